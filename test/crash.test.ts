// Never a stack trace: each way the review made f3s-gen crash, now a message that names the file
// or the operation and an exit code of 1 or 2; with --json, JSON even on failure.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain, type Io } from "../src/cli.js";
import { packageRoot } from "../src/paths.js";
import { fixturesDir, privateSecrets, tempDir } from "./support.js";

const example = readFileSync(join(fixturesDir, "valid/example/spec.yaml"), "utf8");
const STACK = /TypeError|ReferenceError|RangeError|\n\s+at /;

async function cli(args: string[], cwd = tempDir()) {
  let stdout = "";
  let stderr = "";
  const io: Io = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false, env: {}, cwd, now: () => new Date() };
  return { code: await runMain(args, io), stdout, stderr, cwd };
}

describe("a misspelt section name", () => {
  it.each([
    ["clients:", "client:"],
    ["storage:", "storge:"],
    ["  nodes:", "  node:"],
    ["  vip:", "  vIP:"],
    ["  nfs:", "  nsf:"],
    ["  replication:", "  replicaton:"],
    ["  encryption:", "  encrypton:"],
  ])("%s written as %s: located errors, exit 1, JSON with --json", async (right, wrong) => {
    const dir = tempDir();
    writeFileSync(join(dir, "spec.yaml"), example.replace(new RegExp(`^${right}`, "m"), wrong));
    const text = await cli(["validate", "spec.yaml"], dir);
    expect(text.code, text.stderr).toBe(1);
    expect(text.stderr).not.toMatch(STACK);
    expect(text.stderr).toMatch(/^spec\.yaml:\d+:\d+: error: .*did you mean/m);
    const json = await cli(["build", "spec.yaml", "--json"], dir);
    expect(json.code).toBe(1);
    const parsed = JSON.parse(json.stdout);
    expect(parsed.ok).toBe(false);
    expect(parsed.diagnostics.every((d: { line: number }) => d.line > 0)).toBe(true);
    expect(readdirSync(dir)).toEqual(["spec.yaml"]);
  });
});

describe("system errors are one line, naming the file", () => {
  it("init into a directory that does not exist", async () => {
    const r = await cli(["init", "/nonexistent/x.yaml"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("f3s-gen: cannot write /nonexistent/x.yaml: the directory /nonexistent does not exist\n");
  });

  it("a 253-character domain: located errors for every name that would not fit, nothing written", async () => {
    const dir = tempDir();
    const domain = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
    writeFileSync(join(dir, "spec.yaml"), example.replace("domain: lan.buetow.org", `domain: ${domain}`));
    const r = await cli(["build", "spec.yaml"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: \/storage\/vip\/hostname: .* has \d+ characters/);
    expect(r.stderr).toMatch(/error: \/storage\/encryption\/roots\/0\/key: the key file name/);
    expect(r.stderr).not.toMatch(STACK);
    expect(readdirSync(dir)).toEqual(["spec.yaml"]);
  });

  it("an output directory that cannot be written (another user's, as a non-root user would meet it; here: a file in the way)", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "spec.yaml"), example);
    writeFileSync(join(dir, "blocker"), "");
    const r = await cli(["build", "spec.yaml", "--out", "blocker/out", "--secrets", privateSecrets("example"), "--json"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^f3s-gen: build failed: a part of the path is not a directory: .*blocker/m);
    expect(r.stderr).not.toMatch(STACK);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { operation: "build", code: "ENOTDIR" } });
  });

  it.skipIf(process.getuid?.() !== 0 || spawnSync("mount", ["--version"]).status !== 0)("a full disk and a read-only file system (tmpfs mounted for the test)", async () => {
    const base = tempDir();
    const spec = join(base, "spec.yaml");
    writeFileSync(spec, example);
    const secrets = privateSecrets("example");
    for (const [opts, code, words] of [["size=64k", "ENOSPC", "no space left on the device"], ["ro", "EROFS", "read-only file system"]] as const) {
      const mnt = join(base, code);
      mkdirSync(mnt);
      const m = spawnSync("mount", ["-t", "tmpfs", "-o", opts, "tmpfs", mnt]);
      if (m.status !== 0) return; // no permission to mount here: nothing to test
      try {
        const r = await cli(["build", spec, "--out", join(mnt, "out"), "--secrets", secrets, "--json"]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain(words);
        expect(r.stderr).not.toMatch(STACK);
        expect(JSON.parse(r.stdout).error.code).toBe(code);
      } finally {
        spawnSync("umount", [mnt]);
      }
    }
  });

  it("pki status and renew after a certificate file went missing: an error naming it, and renew issues it again", async () => {
    const secrets = privateSecrets("example");
    rmSync(join(secrets, "clients/r0-cert.pem"));
    const status = await cli(["pki", "status", "--secrets", secrets]);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/r0-cert\.pem:1:1: error: .*index\.json records client r0, but clients\/r0-cert\.pem is missing/);
    expect(status.stderr).toMatch(/f3s-gen pki renew <spec> r0/);
    const renew = await cli(["pki", "renew", join(fixturesDir, "valid/example/spec.yaml"), "r0", "--secrets", secrets]);
    expect(renew.code, renew.stderr).toBe(0);
    expect(renew.stdout).toMatch(/renewed r0: its files were missing; new key and certificate issued/);
    expect((await cli(["pki", "status", "--secrets", secrets])).code).toBe(0);
  });

  it("an internal error is one line and a hint to rerun with --debug, which shows the stack", async () => {
    const secrets = privateSecrets("example");
    chmodSync(join(secrets, "index.json"), 0o600);
    writeFileSync(join(secrets, "index.json"), "{}");
    const r = await cli(["pki", "status", "--secrets", secrets, "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(STACK);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
  });
});

describe("the built command", () => {
  const bin = join(packageRoot, "bin/f3s-gen.cjs");

  it("`pki status | head -1`: the closed pipe ends it quietly", () => {
    const secrets = privateSecrets("example");
    // Enough output to fill the pipe after head has gone.
    for (let i = 0; i < 30; i++) cpSync(join(secrets, "clients/r0-cert.pem"), join(secrets, `clients/x${i}-cert.pem`));
    const r = spawnSync("bash", ["-c", `set -o pipefail; node ${bin} pki status --secrets ${secrets} | head -1; echo "codes \${PIPESTATUS[*]}" >&2`], { encoding: "utf8" });
    expect(r.stdout).toMatch(/^HOST +CN/);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr).toMatch(/codes 0 0/);
  });
});

describe("terminal safety", () => {
  it("control characters from the spec never reach the terminal raw (an escape sequence in an excerpt)", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "spec.yaml"), example.replace("hostname: f3s-storage-ha", "hostname: \"f3s\u001b[2J\u001b]0;pwned\u0007\""));
    const r = await cli(["validate", "spec.yaml"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  });
});
