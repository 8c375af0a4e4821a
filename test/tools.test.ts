// The generated files checked by the programs that consume them (or their strictest stand-ins):
// openssl for certificates, shellcheck for scripts in the dialect they run in, systemd-analyze for
// units. Golden files show the output did not change; these show it works.
import { describe, expect, it, beforeAll } from "vitest";
import { cpSync, chmodSync, copyFileSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { buildCase, extract, fixturesDir, hasTool, listFiles, validCases, type Built } from "./support.js";
import { packageRoot } from "../src/paths.js";

const run = (cmd: string, args: string[], input?: string) => spawnSync(cmd, args, { encoding: "utf8", input });

const builds = new Map<string, Built>();
beforeAll(async () => {
  for (const c of validCases) builds.set(c, await buildCase(c));
});

const hosts = (c: string, role: string) => builds.get(c)!.result.hosts!.filter((h) => h.role === role).map((h) => h.name);
const root = (c: string, host: string) => extract(join(builds.get(c)!.outDir, `${host}.tar.gz`));

describe.skipIf(!hasTool("openssl", ["version"]))("openssl", () => {
  it.each(validCases)("verifies every certificate of %s for its purpose against the CA", (c) => {
    const secrets = builds.get(c)!.secretsDir;
    const ca = join(secrets, "ca/ca-cert.pem");
    const verify = (purpose: string, cert: string) => run("openssl", ["verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca, cert]);
    expect(verify("any", ca).status).toBe(0);
    const server = verify("sslserver", join(secrets, "server/server-cert.pem"));
    expect(server.status, server.stderr).toBe(0);
    for (const client of hosts(c, "client")) {
      const pem = join(root(c, client), `etc/stunnel/${client}-stunnel.pem`);
      const ok = verify("sslclient", pem);
      expect(ok.status, `${client}: ${ok.stderr}`).toBe(0);
      // A client certificate must not pass as a server certificate.
      expect(verify("sslserver", pem).status, client).not.toBe(0);
    }
  });

  it.each(validCases)("issues %s's server certificate for the VIP's names and address, and clients for theirs", (c) => {
    const secrets = builds.get(c)!.secretsDir;
    const model = builds.get(c)!.result.checked.model!;
    const server = join(secrets, "server/server-cert.pem");
    for (const name of model.vip.names) expect(run("openssl", ["x509", "-in", server, "-noout", "-checkhost", name]).stdout).toContain("does match");
    expect(run("openssl", ["x509", "-in", server, "-noout", "-checkip", model.vip.address]).stdout).toContain("does match");
    const subject = run("openssl", ["x509", "-in", server, "-noout", "-subject", "-nameopt", "RFC2253"]).stdout;
    expect(subject).toContain(`CN=${model.vip.fqdn}`);
    expect(subject).toContain(`O=${model.pki.organization}`);
    const ca = run("openssl", ["x509", "-in", join(secrets, "ca/ca-cert.pem"), "-noout", "-text"]).stdout;
    expect(ca).toMatch(/CA:TRUE/);
    expect(ca).toMatch(/Certificate Sign, CRL Sign/);
    for (const client of model.clients) {
      const text = run("openssl", ["x509", "-in", join(secrets, `clients/${client.name}-cert.pem`), "-noout", "-text"]).stdout;
      expect(text).toContain(`CN = ${client.fqdn}`);
      expect(text).toMatch(/TLS Web Client Authentication/);
      expect(text).not.toMatch(/TLS Web Server Authentication/);
      expect(run("openssl", ["x509", "-in", join(secrets, `clients/${client.name}-cert.pem`), "-noout", "-checkip", model.vip.address]).stdout).not.toContain("does match");
    }
  });

  it("gives every certificate a distinct random serial", () => {
    // A case sharing another's secrets (a link to them) has the same certificates.
    const own = validCases.filter((c) => !lstatSync(join(fixturesDir, "valid", c, "secrets")).isSymbolicLink());
    const serials = own.flatMap((c) =>
      listFiles(builds.get(c)!.secretsDir)
        .filter((f) => f.endsWith("-cert.pem"))
        .map((f) => run("openssl", ["x509", "-in", join(builds.get(c)!.secretsDir, f), "-noout", "-serial"]).stdout.trim()),
    );
    expect(new Set(serials).size).toBe(serials.length);
    for (const s of serials) expect(s.length).toBeGreaterThanOrEqual("serial=".length + 32);
  });
});

/** Every script with the shell that runs it: FreeBSD's /bin/sh is checked as POSIX sh. */
function scriptsOf(dir: string): [string, "sh" | "bash"][] {
  return listFiles(dir)
    .filter((f) => /^usr\/local\/(s?bin|etc\/rc\.d)\//.test(f))
    .map((f) => {
      const shebang = readFileSync(join(dir, f), "utf8").split("\n")[0]!;
      expect(shebang, f).toMatch(/^#!\/bin\/(sh|bash)$/);
      return [f, shebang.endsWith("bash") ? "bash" : "sh"] as [string, "sh" | "bash"];
    });
}

describe.skipIf(!hasTool("shellcheck"))("shellcheck", () => {
  it.each(validCases)("passes every script of %s with no warning, in its own dialect", (c) => {
    let checked = 0;
    for (const host of builds.get(c)!.result.hosts!.map((h) => h.name)) {
      const dir = root(c, host);
      for (const [file, dialect] of scriptsOf(dir)) {
        const r = run("shellcheck", ["--shell", dialect, "--severity", "style", "--external-sources", join(dir, file)]);
        expect(r.status, `${host}:${file}\n${r.stdout}`).toBe(0);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  it("passes the VM test's own scripts (image build, QEMU runner, the guest's boot and driver)", () => {
    for (const file of ["build-image.sh", "run-vm.sh", "guest/boot", "guest/driver"]) {
      const r = run("shellcheck", ["--shell", "bash", "--severity", "style", join(packageRoot, "test/vm", file)]);
      expect(r.status, `${file}\n${r.stdout}`).toBe(0);
    }
  });
});

describe.skipIf(!hasTool("dash", ["-c", "true"]))("dash", () => {
  it.each(validCases)("parses every sh script of %s (FreeBSD's sh is an ash like dash)", (c) => {
    for (const host of hosts(c, "storage").concat(hosts(c, "member"))) {
      const dir = root(c, host);
      for (const [file, dialect] of scriptsOf(dir)) {
        if (dialect !== "sh") continue;
        const r = run("dash", ["-n", join(dir, file)]);
        expect(r.status, `${host}:${file}: ${r.stderr}`).toBe(0);
      }
    }
  });
});

/**
 * A root for systemd-analyze: the extracted tarball, the distribution's own units (targets), and a
 * stub stunnel.service standing in for the one Rocky/Fedora ship (Debian-family clients bring their
 * own f3s-stunnel.service, which runs /usr/bin/stunnel4).
 */
function systemdRoot(c: string, host: string): string {
  const dir = root(c, host);
  mkdirSync(join(dir, "usr/lib/systemd/system"), { recursive: true });
  cpSync("/usr/lib/systemd/system", join(dir, "usr/lib/systemd/system"), { recursive: true, dereference: false });
  writeFileSync(join(dir, "usr/lib/systemd/system/stunnel.service"), "[Unit]\nDescription=stunnel (stub)\n[Service]\nType=forking\nExecStart=/usr/bin/stunnel\nExecReload=/bin/kill -HUP $MAINPID\n");
  mkdirSync(join(dir, "usr/bin"), { recursive: true });
  mkdirSync(join(dir, "bin"), { recursive: true });
  copyFileSync("/bin/true", join(dir, "usr/bin/stunnel"));
  copyFileSync("/bin/true", join(dir, "usr/bin/stunnel4")); // Debian's name, for f3s-stunnel.service
  chmodSync(join(dir, "usr/bin/stunnel4"), 0o755);
  mkdirSync(join(dir, "usr/sbin"), { recursive: true });
  copyFileSync("/bin/true", join(dir, "usr/sbin/nft"));
  chmodSync(join(dir, "usr/sbin/nft"), 0o755);
  copyFileSync("/bin/kill", join(dir, "bin/kill"));
  chmodSync(join(dir, "usr/bin/stunnel"), 0o755);
  return dir;
}

describe.skipIf(!hasTool("systemd-analyze"))("systemd-analyze verify", () => {
  it.each(validCases)("accepts every unit of every client of %s", (c) => {
    for (const client of hosts(c, "client")) {
      const dir = systemdRoot(c, client);
      const units = listFiles(join(dir, "etc/systemd/system")).map((u) => `/etc/systemd/system/${u}`);
      expect(units.length).toBeGreaterThanOrEqual(3);
      const r = run("systemd-analyze", ["verify", `--root=${dir}`, ...units]);
      expect(r.status, `${client}: ${r.stderr}`).toBe(0);
      expect(r.stderr, client).toBe("");
    }
  });

  it("would catch a unit whose name does not match its mountpoint (the check can fail)", () => {
    const dir = systemdRoot("example", "r0");
    writeFileSync(join(dir, "etc/systemd/system/data-wrong.mount"), readFileSync(join(dir, "etc/systemd/system/data-nfs-k3svolumes.mount")));
    expect(run("systemd-analyze", ["verify", `--root=${dir}`, "/etc/systemd/system/data-wrong.mount"]).status).not.toBe(0);
  });
});
