// A kill at any step of an activation (a power cut, kill -9) leaves every live file at the old or
// the new release and the old one on record until the new one is complete; the next run finishes
// the new release, or --rollback restores the old one, each ending exactly where a fresh deploy
// does. The run is stopped by the stand-ins (test/stubs/_lib.sh, F3S_KILL_AT) right before the
// Nth step that changes something, for every N. Kept apart from release.test.ts so that the two
// run in parallel.
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { hasTool, listFiles, privateSecrets, tempDir } from "./support.js";
import { Host, keep, release } from "./host-harness.js";

const ready = hasTool("dash", ["-c", "true"]) && hasTool("flock", ["--version"]) && hasTool("setsid", ["--version"]);
const exampleSpec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");

function files(root: string): Map<string, string> {
  return new Map(listFiles(root).map((f) => [f, createHash("sha256").update(readFileSync(join(root, f))).digest("hex")]));
}

function deployed(name: string, out: string): Host {
  const host = new Host(name);
  host.deploy(out);
  if (name === "f0") host.becomeMaster();
  return host;
}

describe.skipIf(!ready)("a kill at any step of an activation", () => {
  // Every step that changes something: a rename that installs a file, a service, an address, a
  // ZFS property, a kernel setting.
  const STEPS = "^(mv |service \\S+ (one)?(start|stop|restart|reload)|ifconfig \\S+ (inet|vhid)|zfs (set|mount|load-key)|kldload|sysctl [a-z._]+=|systemctl (daemon-reload|enable|disable|start|stop|restart|reload)|nfsidmap)";
  const v2Of = (s: string) => s.replace("enabled: true", "enabled: false").replace(/  - name: r2\n(.*\n){4}/, "").replace("password: testpass", "password: N3wCarpPass").replace("tlsPort: 2323", "tlsPort: 2324");

  it.each(["f0", "r0"])("%s: every file stays at v1 or v2, v1 on record until v2 is complete; the next run finishes v2, or --rollback restores v1", { timeout: 600_000 }, async (name) => {
    const secretsDir = privateSecrets("example");
    const outDir = join(tempDir(), "out");
    const v1 = keep(await release(exampleSpec, outDir, secretsDir));
    const v2 = keep(await release(v2Of(exampleSpec), outDir, secretsDir));
    const fresh1 = deployed(name, v1!).state();
    const freshHost2 = deployed(name, v2!);
    const fresh2 = freshHost2.state();
    const v1Files = files(deployed(name, v1!).root);
    const v2Files = files(freshHost2.root);
    // How many steps a whole run has: the kill points.
    const probe = deployed(name, v1!);
    probe.extract(join(v2!, `${name}.tar.gz`));
    const counted = probe.activateAlone({ F3S_KILL_AT: "100000", F3S_KILL_MATCH: STEPS });
    expect(counted.code, counted.stderr).toBe(0);
    const steps = Number(probe.sb.read("kill-count").trim());
    expect(steps).toBeGreaterThan(5);
    for (let k = 1; k <= steps; k++) {
      const host = deployed(name, v1!);
      const current = host.current();
      host.extract(join(v2!, `${name}.tar.gz`));
      const killed = host.activateAlone({ F3S_KILL_AT: String(k), F3S_KILL_MATCH: STEPS });
      expect(killed.signal, `step ${k} (${host.sb.read("killed-at").trim()})`).toBe("SIGKILL");
      const now = files(host.root);
      for (const [path, hash] of now) {
        if (/^var\/(db|lib)\/f3s\/|\.f3s-new$/.test(path)) continue;
        expect(hash === v1Files.get(path) || hash === v2Files.get(path), `step ${k}: ${path} is v1's or v2's`).toBe(true);
      }
      // v1 stays on record until v2 is complete; once v2 is (the kill hit the housekeeping after it),
      // every file is v2's.
      if (host.current() !== current) {
        expect(host.current()).toBe(freshHost2.current());
        for (const [path, hash] of v2Files) if (!/^var\/(db|lib)\/f3s\//.test(path)) expect(now.get(path), `step ${k}: ${path}`).toBe(hash);
      }
      if (k % 2 === 1) {
        const done = host.activate();
        expect(done.code, `step ${k}: ${done.stderr}`).toBe(0);
        if (name === "f0") host.settle();
        expect(host.state(), `step ${k}: killed, then run again, equals a fresh v2`).toEqual(fresh2);
      } else {
        const back = host.activate(["--rollback"]);
        expect(back.code, `step ${k}: ${back.stderr}`).toBe(0);
        if (name === "f0") host.settle();
        expect(host.state(), `step ${k}: killed, then rolled back, equals a fresh v1`).toEqual(fresh1);
      }
    }
  });
});

