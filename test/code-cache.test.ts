// bin/f3s-gen.cjs runs the bundle dist/f3s-gen.cjs through V8's code cache (bin/load-cli.cjs): made
// by the first run, used by the next, never taken from a place another user can write (compiled
// code from there would run as this user), and harmless when it is corrupt or turned off.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { tempDir } from "./support.js";

const bundled = existsSync(join(packageRoot, "dist/f3s-gen.cjs"));

/** `f3s-gen --version` with its cache in `cacheHome`; returns what the loader says about the cache. */
function run(cacheHome: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(packageRoot, "bin/f3s-gen.cjs"), "--version"], {
    encoding: "utf8",
    env: { ...process.env, XDG_CACHE_HOME: cacheHome, F3S_DEBUG_CODE_CACHE: "1", ...env },
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/\d+\.\d+\.\d+/);
  return /code cache: .*/.exec(r.stderr)?.[0] ?? "";
}

const caches = (cacheHome: string) => readdirSync(join(cacheHome, "f3s-gen")).filter((n) => n.endsWith(".v8"));

describe.skipIf(!bundled)("the code cache of the bundled CLI", () => {
  it("is made by the first run (0600 in a 0700 directory) and used by the next", () => {
    const home = tempDir();
    expect(run(home)).toMatch(/none yet$/);
    const [file] = caches(home);
    expect(file).toMatch(/^code-[0-9a-f]{16}\.v8$/);
    expect(statSync(join(home, "f3s-gen")).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, "f3s-gen", file!)).mode & 0o777).toBe(0o600);
    expect(run(home)).toMatch(/used$/);
  });

  it("is not read from a file or directory that others can write", () => {
    const home = tempDir();
    run(home);
    const file = join(home, "f3s-gen", caches(home)[0]!);
    chmodSync(file, 0o666);
    expect(run(home)).toMatch(/none yet$/);
    chmodSync(file, 0o600);
    chmodSync(join(home, "f3s-gen"), 0o777);
    expect(run(home)).toMatch(/code cache: off/);
  });

  it("a corrupt cache is rejected by V8 and replaced; F3S_NO_CODE_CACHE=1 turns it off", () => {
    const home = tempDir();
    run(home);
    const file = join(home, "f3s-gen", caches(home)[0]!);
    writeFileSync(file, Buffer.alloc(4096, 7));
    expect(run(home)).toMatch(/rejected$/);
    expect(run(home)).toMatch(/used$/);
    expect(run(home, { F3S_NO_CODE_CACHE: "1" })).toMatch(/code cache: off/);
  });

  it("caches of other builds are removed once they are 30 days old", () => {
    const home = tempDir();
    run(home);
    const dir = join(home, "f3s-gen");
    const old = join(dir, "code-0123456789abcdef.v8");
    const recent = join(dir, "code-fedcba9876543210.v8");
    writeFileSync(old, "x", { mode: 0o600 });
    writeFileSync(recent, "x", { mode: 0o600 });
    const longAgo = new Date(Date.now() - 31 * 24 * 3600 * 1000);
    utimesSync(old, longAgo, longAgo);
    writeFileSync(join(dir, caches(home).find((n) => !n.includes("0123456789abcdef") && !n.includes("fedcba9876543210"))!), "stale");
    expect(run(home)).toMatch(/rejected$/); // writes a new cache, and prunes
    expect(existsSync(old)).toBe(false);
    expect(existsSync(recent)).toBe(true);
  });
});
