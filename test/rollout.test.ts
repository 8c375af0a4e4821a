// The rollout with the real Ansible (Debian's ansible-core) against stand-in hosts: every host of the
// example a simulated root with the stateful stand-ins of test/stubs (as in lifecycle.test.ts),
// reached through Ansible's local connection; the playbooks and inventory are the ones a build
// writes into out/, with a second inventory that points each host at its root (f3s_root) and its
// stand-ins (f3s_environment). The order the hosts changed in is read from the stand-ins' clocked
// call logs. The playbooks also pass ansible-lint (production profile, offline) and
// ansible-playbook --syntax-check, and the inventory ansible-inventory --list.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain } from "../src/cli.js";
import { privateSecrets, tempDir } from "./support.js";
import { keep, release } from "./host-harness.js";
import { ansible, changeOrder, exampleSpec, marks, readRelease, ready, standIns } from "./rollout-harness.js";

describe.skipIf(!ready)("the rollout playbooks", () => {
  it("pass ansible-lint (production profile) and --syntax-check; the inventory parses with its groups and host variables", async () => {
    const out = keep(await release(exampleSpec, join(tempDir(), "out"), privateSecrets("example")));
    const linted = spawnSync("ansible-lint", ["--offline", "-p", "--nocolor"], { cwd: join(out, "ansible"), encoding: "utf8", env: { ...process.env, HOME: tempDir() } });
    expect(linted.status, linted.stdout + linted.stderr).toBe(0);
    for (const playbook of ["deploy.yml", "rollback.yml", "status.yml", "acceptance.yml"]) {
      const r = ansible("ansible-playbook", ["-i", join(out, "inventory.yml"), join(out, "ansible", playbook), "--syntax-check"]);
      expect(r.status, `${playbook}\n${r.stdout}${r.stderr}`).toBe(0);
    }
    const list = ansible("ansible-inventory", ["-i", join(out, "inventory.yml"), "--list"]);
    expect(list.status, list.stderr).toBe(0);
    const inv = JSON.parse(list.stdout);
    expect(inv.f3s_primary.hosts).toEqual(["f0"]);
    expect(inv.f3s_standby.hosts).toEqual(["f1"]);
    expect(inv.f3s_members.hosts).toEqual(["f2"]);
    expect(inv.f3s_clients.hosts).toEqual(["earth", "r0", "r1", "r2"]);
    expect(inv.f3s_storage.children.sort()).toEqual(["f3s_primary", "f3s_standby"]);
    const f0 = inv._meta.hostvars.f0;
    expect(f0).toMatchObject({ ansible_host: "f0.lan.buetow.org", ansible_python_interpreter: "/usr/local/bin/python3", f3s_role: "primary", f3s_state_dir: "/var/db/f3s", f3s_tarball: "f0.tar.gz" });
    expect(f0.f3s_release).toMatch(/^[0-9a-f]{16}$/);
    expect(inv._meta.hostvars.r0).toMatchObject({ f3s_role: "client", f3s_os: "rocky", f3s_state_dir: "/var/lib/f3s" });
    expect(inv._meta.hostvars.r0.ansible_python_interpreter).toBeUndefined();
  });

  it("a first deploy, a CARP password, a revoke and each stage of rotate-ca: storage (standby, then primary) first, members, then clients one at a time", { timeout: 2_400_000 }, async () => {
    const secrets = join(tempDir(), "secrets");
    const outDir = join(tempDir(), "out");
    const specPath = join(tempDir(), "spec.yaml");
    writeFileSync(specPath, exampleSpec);
    const { hosts, inventory } = standIns();
    const io = { stdout: () => {}, stderr: () => {}, isTTY: false, env: {}, cwd: tempDir(), now: () => new Date() };
    const deploy = async (spec: string, extra: string[] = []) => {
      const out = keep(await release(spec, outDir, secrets));
      const since = marks(hosts);
      const r = ansible("ansible-playbook", ["-i", join(out, "inventory.yml"), "-i", inventory, join(out, "ansible/deploy.yml"), "-e", "f3s_gate=degraded", "-e", "f3s_gate_delay=0", "-e", "f3s_gate_retries=1", ...extra]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      for (const [name, h] of hosts) expect(h.current(), `${name} runs the build's release`).toBe(readRelease(out, name));
      return changeOrder(hosts, since);
    };

    expect(await deploy(exampleSpec)).toEqual(["f1", "f0", "f2", "earth", "r0", "r1", "r2"]);
    // Nothing changed: a second run changes nothing.
    expect(await deploy(exampleSpec)).toEqual([]);
    // A new CARP password: the standby and then the primary, nothing else.
    const newPassword = exampleSpec.replace("password: testpass", "password: N3wCarpPass");
    writeFileSync(specPath, newPassword);
    expect(await deploy(newPassword)).toEqual(["f1", "f0"]);
    // A revoked client: the storage nodes refuse the old certificate first, then the client gets its new one.
    expect(await runMain(["pki", "revoke", specPath, "r1", "--secrets", secrets], io)).toBe(0);
    expect(await deploy(newPassword)).toEqual(["f1", "f0", "r1"]);
    // A CA rotation: each stage everywhere, storage first.
    for (let stage = 1; stage <= 3; stage++) {
      expect(await runMain(["pki", "rotate-ca", specPath, "--secrets", secrets], io)).toBe(0);
      // Two clients at a time: within a batch the two change together, in either order.
      const order = await deploy(newPassword, ["-e", "f3s_serial=2"]);
      expect([order.slice(0, 2), order.slice(2, 4).sort(), order.slice(4).sort()], `rotate-ca stage ${stage}`).toEqual([["f1", "f0"], ["earth", "r0"], ["r1", "r2"]]);
    }
  });
});
