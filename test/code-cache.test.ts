// bin/f3s-gen.cjs runs the bundle dist/f3s-gen.cjs through V8's code cache (bin/load-cli.cjs): made
// by the first run, used by the next, never taken from a place another user can write (compiled
// code from there would run as this user), and harmless when it is corrupt or turned off. Every
// check is made on the descriptor that is read, so a file swapped in after a check is not used,
// and the cache names the bundle it was made for: V8 alone runs a cache of other code.
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Module from "node:module";
import { Script } from "node:vm";
import { packageRoot } from "../src/paths.js";
import { tempDir } from "./support.js";

const bundled = existsSync(join(packageRoot, "dist/f3s-gen.cjs"));

/** `f3s-gen --version` with its cache in `cacheHome`; returns what the loader says about the cache. */
function run(cacheHome: string, env: Record<string, string> = {}, root = packageRoot) {
  const r = spawnSync(process.execPath, [join(root, "bin/f3s-gen.cjs"), "--version"], {
    encoding: "utf8",
    env: { ...process.env, XDG_CACHE_HOME: cacheHome, F3S_DEBUG_CODE_CACHE: "1", ...env },
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/\d+\.\d+\.\d+/);
  return /code cache: .*/.exec(r.stderr)?.[0] ?? "";
}

/** The cache's header: what it says it was made for (bin/load-cli.cjs, MAGIC and the digest). */
const HEADER_BYTES = "f3s-gen code cache 1\n".length + 32;

/** A copy of the package whose bundle is the real one with `from` replaced by `to` (the same length). */
function alteredPackage(from: string, to: string): string {
  expect(to.length).toBe(from.length);
  const root = tempDir();
  for (const d of ["bin", "dist"]) mkdirSync(join(root, d));
  for (const f of ["bin/f3s-gen.cjs", "bin/load-cli.cjs", "package.json"]) copyFileSync(join(packageRoot, f), join(root, f));
  const source = readFileSync(join(packageRoot, "dist/f3s-gen.cjs"), "utf8");
  expect(source).toContain(from);
  writeFileSync(join(root, "dist/f3s-gen.cjs"), source.replaceAll(from, to));
  return root;
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
    expect(run(home)).toMatch(/refused \(writable by others\)$/);
    chmodSync(file, 0o600);
    chmodSync(join(home, "f3s-gen"), 0o777);
    expect(run(home)).toMatch(/code cache: off/);
  });

  it("a corrupt cache is rejected by V8 and replaced; F3S_NO_CODE_CACHE=1 turns it off", () => {
    const home = tempDir();
    run(home);
    const file = join(home, "f3s-gen", caches(home)[0]!);
    // Its header intact, V8's data garbage: V8 rejects it.
    writeFileSync(file, Buffer.concat([readFileSync(file).subarray(0, HEADER_BYTES), Buffer.alloc(4096, 7)]));
    expect(run(home)).toMatch(/rejected$/);
    expect(run(home)).toMatch(/used$/);
    writeFileSync(file, Buffer.alloc(4096, 7));
    expect(run(home)).toMatch(/refused \(made for another build or Node\)$/);
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
    expect(run(home)).toMatch(/refused \(5 bytes\)$/); // writes a new cache, and prunes
    expect(existsSync(old)).toBe(false);
    expect(existsSync(recent)).toBe(true);
  });

  it("a cache of other code of the same length is refused before V8 sees it (V8 alone would run it)", () => {
    const home = tempDir();
    run(home);
    const real = join(home, "f3s-gen", caches(home)[0]!);
    // The same package with one phrase of its help changed: its cache, made by its own first run,
    // is put where the real package's cache is (a file of ours, as a stale cache of another build is).
    const altered = alteredPackage("one YAML spec in", "PWNED!! spec in!");
    const before = new Set(caches(home));
    run(home, {}, altered);
    const forged = join(home, "f3s-gen", caches(home).find((n) => !before.has(n))!);
    // V8's own check accepts it for the real source and runs the other code: that is the threat.
    const source = readFileSync(join(packageRoot, "dist/f3s-gen.cjs"), "utf8");
    const v8 = new Script(Module.wrap(source), { filename: join(packageRoot, "dist/f3s-gen.cjs"), cachedData: readFileSync(forged).subarray(HEADER_BYTES) });
    expect(v8.cachedDataRejected).toBe(false);
    renameSync(forged, real);
    expect(run(home)).toMatch(/refused \(made for another build or Node\)$/);
    const help = spawnSync(process.execPath, [join(packageRoot, "bin/f3s-gen.cjs"), "--help"], { encoding: "utf8", env: { ...process.env, XDG_CACHE_HOME: home } });
    expect(help.stdout).toContain("one YAML spec in");
    expect(help.stdout).not.toContain("PWNED");
  });

  // The swap the issue saw win within 15 runs, made certain: strace holds the open of the cache
  // file (delay_enter) while the test renames another user's file over it. The loader checks the
  // descriptor it opened, so what it would read is what it refuses.
  // strace present and allowed to trace here (ptrace may be forbidden in a container).
  const strace = spawnSync("strace", ["-f", "-o", "/dev/null", "-e", "inject=openat:delay_enter=1", "true"]).status === 0;
  it.skipIf(!strace || process.getuid?.() !== 0)("a file swapped in between the checks and the read (strace holds the open) is refused", async () => {
    const home = tempDir();
    run(home);
    const real = join(home, "f3s-gen", caches(home)[0]!);
    // Another user's file, made for this very bundle: only its owner gives it away.
    const planted = join(home, "planted.v8");
    copyFileSync(real, planted);
    chownSync(planted, 65534, 65534);
    const log = join(tempDir(), "strace.log");
    const child = spawn("strace", ["-f", "-o", log, "-P", real, "-e", "trace=openat", "-e", "inject=openat:delay_enter=3000000", process.execPath, join(packageRoot, "bin/f3s-gen.cjs"), "--version"], {
      env: { ...process.env, XDG_CACHE_HOME: home, F3S_DEBUG_CODE_CACHE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    // The loader has passed every check by name and is held at the open: swap the file now.
    for (let i = 0; i < 200 && !(existsSync(log) && readFileSync(log, "utf8").includes(real)); i++) await new Promise((r) => setTimeout(r, 25));
    expect(readFileSync(log, "utf8")).toContain(real);
    renameSync(planted, real);
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/code cache: .*refused \(owned by uid 65534\)/);
  });
});
