// One writer at a time: concurrent builds on the same out/ and secrets all succeed (the second
// waits), a lock left by a killed run is taken over, and a live lock that outlasts the wait is a
// clear error.
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withLocks, LockError } from "../src/lock.js";
import { packageRoot } from "../src/paths.js";
import { fixturesDir, privateSecrets, tempDir } from "./support.js";

const bin = join(packageRoot, "bin/f3s-gen.cjs");

function run(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const p = spawn("node", [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (d) => (output += d));
    p.stderr.on("data", (d) => (output += d));
    p.on("exit", (code) => resolve({ code: code ?? -1, output }));
  });
}

describe("locks", () => {
  it("four builds at once on the same out/ and secrets all succeed, and leave no lock behind", async () => {
    const dir = tempDir();
    const secrets = privateSecrets("example");
    const out = join(dir, "out");
    const spec = join(fixturesDir, "valid/example/spec.yaml");
    const results = await Promise.all(Array.from({ length: 4 }, () => run(["build", spec, "--out", out, "--secrets", secrets, "--quiet"])));
    for (const r of results) {
      expect(r.code, r.output).toBe(0);
      expect(r.output).not.toMatch(/Error|\n\s+at /);
    }
    expect(readdirSync(dir)).toEqual(["out"]);
    expect(existsSync(`${secrets}.lock`)).toBe(false);
  }, 120_000);

  it("takes over a lock whose process is gone (a run that was killed)", async () => {
    const dir = join(tempDir(), "secrets");
    writeFileSync(`${dir}.lock`, "999999999\n");
    expect(await withLocks([dir], async () => "ran", 1000)).toBe("ran");
    expect(existsSync(`${dir}.lock`)).toBe(false);
  });

  it("a lock held by a live process past the wait is an error that names it", async () => {
    const dir = join(tempDir(), "out");
    writeFileSync(`${dir}.lock`, `${process.pid}\n`);
    await expect(withLocks([dir], async () => "ran", 200)).rejects.toThrow(LockError);
    await expect(withLocks([dir], async () => "ran", 200)).rejects.toThrow(/another f3s-gen is still writing .*out/);
  });
});
