// Hostile files where f3s-gen reads: each refused with an error naming the file, before it is read
// (no hang on /dev/zero, no memory blown by a huge file), and names in index.json that could reach
// outside the secrets directory.
import { describe, expect, it } from "vitest";
import { chmodSync, chownSync, existsSync, rmSync, statSync, symlinkSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { runMain, type Io } from "../src/cli.js";
import { fixturesDir, privateSecrets, tempDir } from "./support.js";

async function cli(args: string[]) {
  let stdout = "";
  let stderr = "";
  const io: Io = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false, env: {}, cwd: tempDir(), now: () => new Date() };
  return { code: await runMain(args, io), stdout, stderr };
}
const spec = join(fixturesDir, "valid/example/spec.yaml");

describe("hostile secrets and output files", () => {
  it.each([
    ["index.json", "a link to /dev/zero", (f: string) => symlinkSync("/dev/zero", f), /not a regular file \(a symbolic link\)/],
    ["ca/ca-cert.pem", "2 MiB", (f: string) => writeFileSync(f, Buffer.alloc(2 << 20, 65), { mode: 0o600 }), /bytes, far more than such a file holds/],
    ["zfs/f0.lan.buetow.org:zdata.key", "a link to /dev/zero", (f: string) => symlinkSync("/dev/zero", f), /not a regular file/],
  ])("%s as %s: an error naming it, at once", async (rel, _what, make, message) => {
    const secrets = privateSecrets("example");
    rmSync(join(secrets, rel));
    make(join(secrets, rel));
    const r = await cli(["build", spec, "--secrets", secrets, "--out", join(tempDir(), "out")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(join(secrets, rel));
    expect(r.stderr).toMatch(message);
  });

  it("a name in index.json that would reach outside the secrets directory", async () => {
    const secrets = privateSecrets("example");
    const index = JSON.parse(readFileSync(join(secrets, "index.json"), "utf8"));
    index.clients.push("../../x");
    writeFileSync(join(secrets, "index.json"), JSON.stringify(index));
    const r = await cli(["pki", "status", "--secrets", secrets]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/index\.json:1:1: error: .*not a valid f3s-gen secrets index/);
  });

  it("show refuses a tarball that would inflate past any host's, without exhausting memory", async () => {
    const out = join(tempDir(), "out");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(out);
    writeFileSync(join(out, ".f3s-gen-output"), "");
    writeFileSync(join(out, "bomb.tar.gz"), gzipSync(Buffer.alloc(100 << 20)));
    const r = await cli(["show", "bomb", "--out", out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/show failed: .*(buffer|length|larger)/i);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("a local user's leverage on the files f3s-gen writes", () => {
  it("a secrets file readable by others (0644 CA key inside the 0700 directory) is refused, naming it", async () => {
    const secrets = privateSecrets("example");
    chmodSync(join(secrets, "ca/ca-key.pem"), 0o644);
    const r = await cli(["build", spec, "--secrets", secrets, "--out", join(tempDir(), "out")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(secrets, "ca/ca-key.pem")}:1:1: error:`);
    expect(r.stderr).toContain("a secrets file is accessible to other users (mode 0644)");
    expect(r.stderr).toContain(`chmod -R go= ${secrets}`);
  });

  it.skipIf(process.getuid?.() !== 0)("a secrets directory owned by another user is refused", async () => {
    const secrets = privateSecrets("example");
    chownSync(secrets, 65534, 65534);
    const r = await cli(["build", spec, "--secrets", secrets, "--out", join(tempDir(), "out")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/owned by uid 65534, not by the user running f3s-gen/);
  });

  it("an expired client certificate is an error naming its file, not a warning that deploys it", async () => {
    const secrets = privateSecrets("example");
    const short = join(tempDir(), "spec.yaml");
    // A leaf re-issued with a one-day lifetime (the CA keeps its ten years), then built two days later.
    writeFileSync(short, readFileSync(spec, "utf8").replace(/validityDays: \d+/, "validityDays: 1"));
    expect((await cli(["pki", "renew", short, "r0", "--secrets", secrets])).code).toBe(0);
    let stderr = "";
    const io: Io = { stdout: () => {}, stderr: (s) => (stderr += s), isTTY: false, env: {}, cwd: tempDir(), now: () => new Date(Date.now() + 2 * 86400_000) };
    const out = join(tempDir(), "out");
    expect(await runMain(["build", spec, "--secrets", secrets, "--out", out], io)).toBe(1);
    expect(stderr).toContain(`${join(secrets, "clients/r0-cert.pem")}:1:1: error:`);
    expect(stderr).toMatch(/the r0 certificate expired on .*\n(.*\n)*?\s+hint: run `f3s-gen pki renew <spec> r0`/);
    expect(existsSync(out)).toBe(false);
  });

  it("init does not write through a dangling symbolic link", async () => {
    const dir = tempDir();
    const victim = join(tempDir(), "victim");
    symlinkSync(victim, join(dir, "f3s.yaml"));
    const r = await runMain(["init", join(dir, "f3s.yaml")], { stdout: () => {}, stderr: () => {}, isTTY: false, env: {}, cwd: dir, now: () => new Date() });
    expect(r).not.toBe(0);
    expect(existsSync(victim)).toBe(false);
  });

  it("under umask 000 the parents of --out are not created world-writable", async () => {
    const base = tempDir();
    const old = process.umask(0);
    try {
      const r = await cli(["build", spec, "--secrets", join(base, "s/secrets"), "--out", join(base, "a/b/out"), "--quiet"]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      process.umask(old);
    }
    for (const d of ["a", "a/b", "s"]) expect(statSync(join(base, d)).mode & 0o022, `${d} is writable by others`).toBe(0);
  });
});
