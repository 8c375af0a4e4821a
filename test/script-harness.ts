// Runs generated scripts for real under dash (standing in for FreeBSD's sh) or bash, with the
// stand-ins of test/stubs first on PATH. Paths a script writes to are rewritten to a sandbox by
// replacing the script's own `NAME=value` assignments at the top.
import { spawnSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { tempDir } from "./support.js";

/** This machine's program directories, after the stand-ins on a sandbox's PATH. */
const SYSTEM_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];
/** Where the host scripts look too (they append these to PATH). */
const SCRIPT_DIRS = [...SYSTEM_DIRS, "/usr/local/sbin", "/usr/local/bin"];

export const stubsDir = join(packageRoot, "test/stubs");

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export class Sandbox {
  readonly dir = tempDir("f3s-sandbox-");
  readonly state = join(this.dir, "state");
  /** Directories searched before the stand-ins (real programs for one test), and more variables. */
  readonly before: string[] = [];
  readonly extraEnv: Record<string, string> = {};

  constructor() {
    mkdirSync(this.state, { recursive: true });
  }

  /** A copy of a generated script with some of its top-level assignments replaced. */
  script(source: string, vars: Record<string, string> = {}): string {
    let text = readFileSync(source, "utf8");
    for (const [name, value] of Object.entries(vars)) {
      const re = new RegExp(`^${name}=.*$`, "m");
      if (!re.test(text)) throw new Error(`${source} has no ${name}= line`);
      text = text.replace(re, `${name}='${value}'`);
    }
    const out = join(this.dir, `script-${Math.random().toString(36).slice(2)}`);
    writeFileSync(out, text);
    chmodSync(out, 0o755);
    return out;
  }

  private hiddenPath?: string;
  private masked: string[] = [];

  /**
   * Takes commands off PATH (stand-ins and this machine's programs alike), for a host that lacks
   * them: PATH becomes one directory of links to everything else.
   */
  hide(names: string[]) {
    const dir = join(this.dir, `path-${names.join("-")}`);
    mkdirSync(dir, { recursive: true });
    for (const from of [stubsDir, ...SYSTEM_DIRS]) {
      for (const n of readdirSync(from)) {
        if (names.includes(n) || existsSync(join(dir, n))) continue;
        symlinkSync(join(from, n), join(dir, n));
      }
    }
    this.hiddenPath = dir;
    // The host scripts append the system directories to PATH themselves (root's PATH may lack
    // them): a program this machine really has (mount.nfs4 with nfs-common) is masked in a mount
    // namespace of the run's own instead.
    this.masked = [...new Set(SCRIPT_DIRS.flatMap((d) => names.map((n) => join(d, n))).filter((f) => existsSync(f)).map((f) => realpathSync(f)))];
    if (this.masked.length && process.getuid?.() !== 0) throw new Error(`hiding ${this.masked.join(" ")} (this machine has it) needs root, for a private mount namespace`);
  }

  /** Puts every command back on PATH. */
  unhide() {
    this.hiddenPath = undefined;
    this.masked = [];
  }

  /** The command line that runs `argv`, with the hidden real programs masked (an empty file over each). */
  private command(argv: string[]): [string, string[]] {
    if (!this.masked.length) return [argv[0]!, argv.slice(1)];
    const script = 'n=$1; shift; while [ "$n" -gt 0 ]; do PATH=/usr/sbin:/usr/bin:/sbin:/bin mount --bind /dev/null "$1" || exit 125; shift; n=$((n - 1)); done; exec "$@"';
    return ["unshare", ["-m", "--propagation", "private", "sh", "-c", script, "sh", String(this.masked.length), ...this.masked, ...argv]];
  }

  env(): NodeJS.ProcessEnv {
    const path = this.hiddenPath ? [...this.before, this.hiddenPath] : [...this.before, stubsDir, ...SYSTEM_DIRS];
    return { PATH: path.join(":"), F3S_STUB_STATE: this.state, HOME: this.dir, LC_ALL: "C", ...this.extraEnv };
  }

  run(shell: "dash" | "bash", script: string, args: string[] = []): Result {
    const [command, argv] = this.command([shell, script, ...args]);
    const r = spawnSync(command, argv, { env: this.env(), encoding: "utf8", timeout: 180_000 });
    if (r.error) throw r.error;
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * Runs in a session (and process group) of its own, so that a kill test's stand-in can kill the
   * whole run, and nothing else, with `kill -KILL 0`. `signal` says whether it was killed.
   */
  runAlone(shell: "dash" | "bash", script: string, args: string[] = [], env: Record<string, string> = {}): Result & { signal: string | null } {
    const [command, argv] = this.command(["setsid", "-w", shell, script, ...args]);
    const r = spawnSync(command, argv, { env: { ...this.env(), ...env }, encoding: "utf8", timeout: 180_000 });
    if (r.error) throw r.error;
    return { code: r.status ?? -1, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  }

  /** A state file of the stand-ins, e.g. "if/re0" or "running/nfsd". */
  set(rel: string, content = "") {
    const file = join(this.state, rel);
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, content);
  }

  has(rel: string): boolean {
    return existsSync(join(this.state, rel));
  }

  /** Removes a state file or directory of the stand-ins (e.g. a dataset: "zfs/<name with / as %>"). */
  remove(rel: string) {
    rmSync(join(this.state, rel), { recursive: true, force: true });
  }

  read(rel: string): string {
    return existsSync(join(this.state, rel)) ? readFileSync(join(this.state, rel), "utf8") : "";
  }

  calls(): string[] {
    return this.read("calls").split("\n").filter(Boolean);
  }

  /** A ZFS dataset for the zfs stand-in. */
  dataset(name: string, props: Record<string, string> = {}) {
    for (const [k, v] of Object.entries({ mounted: "no", keystatus: "available", ...props })) this.set(`zfs/${name.replace(/\//g, "%")}/${k}`, v + "\n");
  }

  prop(name: string, prop: string): string {
    return this.read(`zfs/${name.replace(/\//g, "%")}/${prop}`).trim();
  }

  /** Holds `file` locked with flock(1) until the returned function is called. */
  holdLock(file: string): () => void {
    mkdirSync(join(file, ".."), { recursive: true });
    // Its own process group, so that the sleep holding the lock dies with it.
    const p = spawn("flock", [file, "sleep", "30"], { stdio: "ignore", detached: true });
    return () => {
      process.kill(-p.pid!, "SIGKILL");
      // The holder dies asynchronously: wait (bounded) until the lock is really free.
      const until = Date.now() + 5000;
      while (Date.now() < until && spawnSync("flock", ["-n", file, "true"]).status !== 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    };
  }
}

/** `ifconfig <if>` output of FreeBSD 14 for an interface carrying a CARP VIP. */
export function carpInterface(iface: string, address: string, vip: string, vhid: number, state: string): string {
  return [
    `${iface}: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500`,
    `\tinet ${address} netmask 0xffffff00 broadcast 192.0.2.255`,
    `\tinet ${vip} netmask 0xffffffff broadcast ${vip} vhid ${vhid}`,
    `\tcarp: ${state} vhid ${vhid} advbase 1 advskew 0`,
    `\t      peer 224.0.0.18 peer6 ff02::12`,
    "",
  ].join("\n");
}

export function plainInterface(iface: string, address: string): string {
  return `${iface}: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384\n\tinet ${address} netmask 0xff000000\n`;
}

/** lo0 as netif leaves it at boot on a storage node: 127.0.0.1 and every client's address of the rc.conf.d/netif in `root`. */
export function loopbackOf(root: string): string {
  const netif = readFileSync(join(root, "etc/rc.conf.d/netif"), "utf8");
  const aliases = /^ifconfig_lo0_aliases="([^"]*)"$/m.exec(netif)?.[1] ?? "";
  const addresses = [...aliases.matchAll(/inet (\S+)\/32/g)].map((m) => m[1]!);
  return plainInterface("lo0", "127.0.0.1") + addresses.map((a) => `\tinet ${a} netmask 0xffffffff\n`).join("");
}

export const mutating = /\b(start|stop|restart|reload|enable|set|mount|load-key|create|kldload|daemon-reload|delete|umount)\b|state (master|backup)|ifconfig \S+ inet |sysctl --system|sysctl \S+=|nfsidmap -c/;
