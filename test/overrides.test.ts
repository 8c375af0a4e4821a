// Overrides (issue 22, point 1): extra files and patches per host or role, in the spec and in files
// beside it. They travel in the release like generated files (MANIFEST, show, diff, install, removal
// when they leave the spec), are checked by the programs that consume them, and one that no longer
// fits what f3s-gen generates is an error at its line that writes nothing.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT } from "../src/cli.js";
import { extract, fixturesDir, hasTool, privateSecrets, tempDir, runCli } from "./support.js";
import { Host, changeLines, keep, release } from "./host-harness.js";

const example = readFileSync(join(fixturesDir, "valid/example/spec.yaml"), "utf8");

const OVERRIDES = `
overrides:
  - hosts: [r0]
    files:
      - path: /usr/local/bin/hello
        mode: "0755"
        source: files/hello.sh
      - path: /etc/systemd/system/nfs-mount-monitor.service.d/50-local.conf
        content: |
          [Service]
          Nice=5
  - roles: [storage]
    patches:
      - path: /usr/local/etc/stunnel/stunnel.conf
        find: "pid = /var/run/stunnel/stunnel.pid\\n"
        replace: "pid = /var/run/stunnel/stunnel.pid\\nciphersuites = TLS_AES_256_GCM_SHA384\\n"
`;

/** A directory with the spec (plus `extra`), its files/hello.sh, and the example's secrets. */
function cluster(extra = OVERRIDES) {
  const dir = tempDir();
  writeFileSync(join(dir, "spec.yaml"), example + extra);
  mkdirSync(join(dir, "files"));
  writeFileSync(join(dir, "files/hello.sh"), '#!/bin/sh\nprintf "%s\\n" "hello from $(hostname)"\n');
  cpSync(privateSecrets("example"), join(dir, "secrets"), { recursive: true });
  return dir;
}

const cli = runCli;

describe("overrides", () => {
  it("extra files and a drop-in on one host, a patch on a role: in the release, its MANIFEST and show", async () => {
    const dir = cluster();
    const r = await cli(["build", "spec.yaml", "--quiet"], dir);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const r0 = extract(join(dir, "out/r0.tar.gz"));
    expect(readFileSync(join(r0, "usr/local/bin/hello"), "utf8")).toContain("hello from");
    const manifest = readFileSync(join(r0, "usr/local/share/f3s/MANIFEST"), "utf8");
    expect(manifest).toMatch(/^0755 [0-9a-f]{64} \/usr\/local\/bin\/hello$/m);
    expect(manifest).toMatch(/^0644 [0-9a-f]{64} \/etc\/systemd\/system\/nfs-mount-monitor\.service\.d\/50-local\.conf$/m);
    for (const node of ["f0", "f1"]) {
      const conf = (await cli(["show", node, "--cat", "/usr/local/etc/stunnel/stunnel.conf"], dir)).stdout;
      expect(conf).toContain("pid = /var/run/stunnel/stunnel.pid\nciphersuites = TLS_AES_256_GCM_SHA384\n");
    }
    // Only the hosts named: r1 has neither file.
    expect(existsSync(join(extract(join(dir, "out/r1.tar.gz")), "usr/local/bin/hello"))).toBe(false);
    // diff against a build without them names exactly these.
    writeFileSync(join(dir, "plain.yaml"), example);
    const d = await cli(["diff", "plain.yaml", "--out", "out", "--secrets", "secrets"], dir);
    expect(d.stdout).toMatch(/removed \/usr\/local\/bin\/hello/);
    expect(d.stdout).toMatch(/-ciphersuites = TLS_AES_256_GCM_SHA384/);
  });

  it.skipIf(!hasTool("shellcheck") || !hasTool("systemd-analyze"))("are checked by the programs that consume them: shellcheck for a script, systemd-analyze for a unit with its drop-in", async () => {
    const dir = cluster();
    expect((await cli(["build", "spec.yaml", "--quiet"], dir)).code).toBe(EXIT.ok);
    const r0 = extract(join(dir, "out/r0.tar.gz"));
    const sc = spawnSync("shellcheck", ["-s", "sh", join(r0, "usr/local/bin/hello")], { encoding: "utf8" });
    expect(sc.status, sc.stdout).toBe(0);
    // The drop-in is read: a broken one is refused by systemd-analyze, the good one accepted.
    mkdirSync(join(r0, "usr/lib/systemd/system"), { recursive: true });
    cpSync("/usr/lib/systemd/system", join(r0, "usr/lib/systemd/system"), { recursive: true });
    for (const bin of ["usr/local/bin/check-nfs-mount.sh"]) chmodSync(join(r0, bin), 0o755);
    mkdirSync(join(r0, "bin"), { recursive: true });
    copyFileSync("/bin/true", join(r0, "bin/true"));
    const verify = () => spawnSync("systemd-analyze", ["verify", `--root=${r0}`, "/etc/systemd/system/nfs-mount-monitor.service"], { encoding: "utf8" });
    const good = verify();
    expect(good.status, good.stderr).toBe(0);
    writeFileSync(join(r0, "etc/systemd/system/nfs-mount-monitor.service.d/50-local.conf"), "[Service]\nNice=fifty\n");
    expect(verify().stderr).toMatch(/50-local\.conf:2: Failed to parse nice priority 'fifty'/);
  });

  it.each([
    ["a patch whose text the generated file no longer has", OVERRIDES.replace("stunnel.pid\\n\"", "stunnel.pid.old\\n\""), /\/overrides\/1\/patches\/0\/find: this patch no longer applies to \/usr\/local\/etc\/stunnel\/stunnel\.conf on f0/],
    ["a patch of a file the host does not have", OVERRIDES.replace("roles: [storage]", "roles: [client]"), /\/overrides\/1\/patches\/0\/path: r0 has no generated file \/usr\/local\/etc\/stunnel\/stunnel\.conf/],
    ["an extra file where f3s-gen writes one", OVERRIDES.replace("/usr/local/bin/hello", "/usr/local/bin/check-nfs-mount.sh"), /f3s-gen generates \/usr\/local\/bin\/check-nfs-mount\.sh on r0: an extra file cannot replace it/],
    ["a drop-in for a unit the host does not have", OVERRIDES.replace("nfs-mount-monitor.service.d", "nginx.service.d"), /r0 has no unit nginx\.service from f3s-gen for this drop-in/],
    ["a host that is not in the spec", OVERRIDES.replace("hosts: [r0]", "hosts: [r9]"), /\/overrides\/0\/hosts\/0: no host "r9" in the spec[\s\S]*did you mean "r0"\?/],
    ["a missing source file", OVERRIDES.replace("files/hello.sh", "files/nope.sh"), /\/overrides\/0\/files\/0\/source: cannot read source: .*nope\.sh does not exist/],
    ["f3s-gen's own record", OVERRIDES.replace("/usr/local/bin/hello", "/var/lib/f3s/current"), /\/var\/lib\/f3s\/current is f3s-gen's own/],
  ])("%s: an error at its line; nothing is written", async (_what, overrides, message) => {
    const dir = cluster(overrides);
    const r = await cli(["build", "spec.yaml"], dir);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toMatch(/^spec\.yaml:\d+:\d+: error: /m);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(dir, "out"))).toBe(false);
  });
});

const ready = hasTool("dash", ["-c", "true"]) && hasTool("flock", ["--version"]);
describe.skipIf(!ready)("overrides on a host, across releases", () => {
  it("v1 with an extra file and a drop-in, v2 without: both leave (systemd reloaded), as a fresh v2; the patch goes with them", async () => {
    const secrets = privateSecrets("example");
    const out = join(tempDir(), "out");
    const specDir = tempDir();
    mkdirSync(join(specDir, "files"));
    writeFileSync(join(specDir, "files/hello.sh"), "#!/bin/sh\necho hello\n");
    const v1Spec = (example + OVERRIDES).replace("source: files/hello.sh", `source: ${join(specDir, "files/hello.sh")}`);
    const v1 = keep(await release(v1Spec, out, secrets));
    const v2 = keep(await release(example, out, secrets));
    const host = new Host("r0");
    const first = host.deploy(v1);
    expect(changeLines(first.stdout, "changed")).toContain("installed /usr/local/bin/hello");
    expect(readFileSync(join(host.root, "etc/systemd/system/nfs-mount-monitor.service.d/50-local.conf"), "utf8")).toContain("Nice=5");
    // A changed drop-in alone reloads systemd.
    host.extract(join(v2, "r0.tar.gz"));
    const second = host.activate();
    expect(second.code, second.stderr).toBe(0);
    const changed = changeLines(second.stdout, "changed");
    expect(changed).toEqual(expect.arrayContaining(["removed /usr/local/bin/hello (no longer in the spec)", "removed /etc/systemd/system/nfs-mount-monitor.service.d/50-local.conf (no longer in the spec)", "systemd reloaded the f3s units"]));
    const fresh = new Host("r0");
    fresh.deploy(v2);
    expect(host.state()).toEqual(fresh.state());
  });
});
