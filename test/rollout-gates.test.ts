// The rollout's failures with the real Ansible against stand-in hosts (see test/rollout.test.ts): a
// preflight failure, a failing health gate, the plan, the rollback and what runs where.
import { describe, expect, it } from "vitest";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./support.js";
import { keep, release } from "./host-harness.js";
import { NAMES, ansible, changeOrder, exampleSpec, marks, readRelease, ready, standIns } from "./rollout-harness.js";

describe.skipIf(!ready)("the rollout playbooks, when something fails", () => {
  it("a preflight failure anywhere stops every host before any change; a failing health gate stops the rollout at that host", { timeout: 1_800_000 }, async () => {
    const secrets = join(tempDir(), "secrets");
    const outDir = join(tempDir(), "out");
    const { hosts, inventory, refresh } = standIns();
    const v1 = keep(await release(exampleSpec, outDir, secrets));
    const play = (out: string, extra: string[] = []) =>
      ansible("ansible-playbook", ["-i", join(out, "inventory.yml"), "-i", inventory, join(out, "ansible/deploy.yml"), "-e", "f3s_gate=degraded", "-e", "f3s_gate_delay=0", "-e", "f3s_gate_retries=1", ...extra]);
    expect(play(v1).status).toBe(0);
    const v2 = keep(await release(exampleSpec.replace("tlsPort: 2323", "tlsPort: 2324"), outDir, secrets));

    // f1 lacks zrepl (its package: the rc script and the program): its preflight fails, and nothing
    // changes anywhere. (A program this machine has, like mount.nfs4, cannot be hidden from a play:
    // the scripts append the system directories to PATH.)
    const f1 = hosts.get("f1")!;
    const zreplRc = join(f1.root, "usr/local/etc/rc.d/zrepl");
    rmSync(zreplRc);
    f1.sb.hide(["zrepl"]);
    refresh();
    const since = marks(hosts);
    const refused = play(v2);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout).toMatch(/f1[\s\S]*preflight: not installed: zrepl/);
    expect(changeOrder(hosts, since)).toEqual([]);
    for (const [n, h] of hosts) expect(h.current(), n).toBe(readRelease(v1, n));
    writeFileSync(zreplRc, "#!/bin/sh\n", { mode: 0o755 });
    f1.sb.unhide();
    refresh();

    // r0's mount goes stale (its server is gone): the rollout stops at r0; r1 and r2 keep v1.
    hosts.get("r0")!.sb.set("stale/%data%nfs%k3svolumes");
    const stopped = play(v2);
    expect(stopped.status).not.toBe(0);
    expect(stopped.stdout).toMatch(/r0 is broken after release [0-9a-f]{16}: .*\/data\/nfs\/k3svolumes does not answer.*The rollout stops here/);
    for (const n of ["f0", "f1", "f2", "earth", "r0"]) expect(hosts.get(n)!.current(), n).toBe(readRelease(v2, n));
    for (const n of ["r1", "r2"]) expect(hosts.get(n)!.current(), `${n} is untouched`).toBe(readRelease(v1, n));

    // The plan: --check --diff shows each host's changes and changes nothing.
    const planSince = marks(hosts);
    const plan = play(v2, ["--check", "--diff", "--limit", "r1"]);
    expect(plan.status, plan.stdout).toBe(0);
    expect(plan.stdout).toMatch(/would: updated \/etc\/stunnel\/stunnel\.conf/);
    expect(plan.stdout).toMatch(/-accept = 127\.0\.0\.1:2323/);
    expect(changeOrder(hosts, planSince)).toEqual([]);
    expect(hosts.get("r1")!.current()).toBe(readRelease(v1, "r1"));

    // The rollback playbook, in reverse order, with the same gates: r0 goes back to v1.
    rmSync(join(hosts.get("r0")!.sb.state, "stale/%data%nfs%k3svolumes"));
    const backSince = marks(hosts);
    const back = ansible("ansible-playbook", ["-i", join(v2, "inventory.yml"), "-i", inventory, join(v2, "ansible/rollback.yml"), "-e", "f3s_gate=degraded", "-e", "f3s_gate_delay=0", "-e", "f3s_gate_retries=1", "--limit", "f0,f1,f2,earth,r0"]);
    expect(back.status, back.stdout).toBe(0);
    // f2's release did not change: it has nothing to roll back to, and is left as it is.
    expect(changeOrder(hosts, backSince)).toEqual(["earth", "r0", "f0", "f1"]);
    for (const n of NAMES) expect(hosts.get(n)!.current(), n).toBe(readRelease(v1, n));

    // What runs where: every host's release against out/'s, and its health.
    const where = ansible("ansible-playbook", ["-i", join(v2, "inventory.yml"), "-i", inventory, join(v2, "ansible/status.yml")]);
    expect(where.status, where.stdout).toBe(0);
    // r1 has v2 staged (the failed rollout staged it everywhere before it stopped at r0), f0 v2 activated
    // and rolled back: on disk but no longer staged.
    expect(where.stdout).toMatch(new RegExp(`r1 \\(client\\): runs ${readRelease(v1, "r1")}, out/ has ${readRelease(v2, "r1")} \\(staged, not activated\\); healthy`));
    expect(where.stdout).toMatch(new RegExp(`f2 \\(member\\): runs ${readRelease(v2, "f2")}, out/ has ${readRelease(v2, "f2")} \\(up to date\\)`));
  });
});
