// Hostile files where f3s-gen reads: each refused with an error naming the file, before it is read
// (no hang on /dev/zero, no memory blown by a huge file), and names in index.json that could reach
// outside the secrets directory.
import { describe, expect, it } from "vitest";
import { rmSync, symlinkSync, writeFileSync, readFileSync } from "node:fs";
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
    ["ca/ca-cert.pem", "2 MiB", (f: string) => writeFileSync(f, Buffer.alloc(2 << 20, 65)), /bytes is far more than any secrets file holds/],
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
