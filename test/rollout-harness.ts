// The rollout's stand-in cluster, shared by test/rollout.test.ts and test/rollout-gates.test.ts (two
// files, so that vitest runs them side by side: each drives ansible-playbook for minutes).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { packageRoot } from "../src/paths.js";
import { hasTool, tempDir } from "./support.js";
import { Host } from "./host-harness.js";

export const ready = hasTool("ansible-playbook", ["--version"]) && hasTool("dash", ["-c", "true"]) && hasTool("flock", ["--version"]);
export const exampleSpec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8").replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256");
export const NAMES = ["f0", "f1", "f2", "earth", "r0", "r1", "r2"];
/** Which mount unit each client's mountpoint belongs to, so that starting the unit mounts it. */
const UNITS: Record<string, [string, string][]> = {
  earth: [["data-nfs.mount", "/data/nfs"]],
  r0: [["data-nfs-k3svolumes.mount", "/data/nfs/k3svolumes"]],
  r1: [["data-nfs-k3svolumes.mount", "/data/nfs/k3svolumes"]],
  r2: [["data-nfs-k3svolumes.mount", "/data/nfs/k3svolumes"]],
};

export function ansible(command: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(command, args, {
    encoding: "utf8",
    timeout: 600_000,
    env: { ...process.env, ANSIBLE_NOCOLOR: "1", ANSIBLE_FORKS: "10", ANSIBLE_PIPELINING: "1", ANSIBLE_FORCE_COLOR: "0", ANSIBLE_LOCAL_TEMP: join(tempDir(), "ansible"), ANSIBLE_REMOTE_TEMP: join(tempDir(), "ansible-remote"), ...env },
  });
}

/**
 * The cluster as stand-ins, and an inventory that points Ansible at them: each host's root, and the
 * PATH and state of its stand-ins (written again by `refresh` after a host's PATH changed).
 */
export function standIns() {
  const hosts = new Map(NAMES.map((n) => [n, new Host(n)]));
  for (const [name, units] of Object.entries(UNITS)) for (const [unit, mp] of units) hosts.get(name)!.sb.set(`units/${unit}`, mp);
  const python = spawnSync("sh", ["-c", "command -v python3"], { encoding: "utf8" }).stdout.trim();
  const file = join(tempDir(), "standins.yml");
  const refresh = () => {
    const vars = Object.fromEntries(
      [...hosts].map(([name, h]) => {
        const env = h.sb.env();
        return [name, { ansible_connection: "local", ansible_python_interpreter: python, f3s_root: `${h.root}/`, f3s_environment: { PATH: env.PATH, F3S_STUB_STATE: env.F3S_STUB_STATE, LC_ALL: "C" } }];
      }),
    );
    writeFileSync(file, stringify({ all: { hosts: vars } }));
  };
  refresh();
  return { hosts, inventory: file, refresh };
}

/** When a host last recorded a release as the one it runs (f3s-activate renames `current` last). */
export function recorded(h: Host): number {
  const file = join(h.root, h.name.startsWith("f") ? "var/db/f3s/current" : "var/lib/f3s/current");
  return existsSync(file) ? statSync(file).mtimeMs : 0;
}

/** The hosts that moved to another release since `since`, in the order they finished. */
export function changeOrder(hosts: Map<string, Host>, since: Map<string, number>): string[] {
  return [...hosts]
    .filter(([n, h]) => recorded(h) > since.get(n)!)
    .sort((a, b) => recorded(a[1]) - recorded(b[1]))
    .map(([n]) => n);
}

export const marks = (hosts: Map<string, Host>) => new Map([...hosts].map(([n, h]) => [n, recorded(h)]));

/** The release id a host's tarball in `out` stages. */
export function readRelease(out: string, host: string): string {
  const r = spawnSync("tar", ["-xzOf", join(out, `${host}.tar.gz`), `${host.startsWith("f") ? "var/db/f3s" : "var/lib/f3s"}/staged`], { encoding: "utf8" });
  return r.stdout.trim();
}
