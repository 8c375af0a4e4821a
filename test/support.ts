// Shared test helpers: fixture secrets in a private temp copy, builds into temp dirs, and a small
// tar reader that exposes the raw header fields the tarball contract is about.
import { cpSync, mkdtempSync, chmodSync, readdirSync, statSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { build, type BuildResult } from "../src/pipeline.js";
import { packageRoot } from "../src/paths.js";
import { readTarGzBuffer, type TarFile } from "../src/pack/read.js";
import { releaseOf } from "../src/render/release.js";

export const fixturesDir = join(packageRoot, "fixtures");
export const validCases = readdirSync(join(fixturesDir, "valid")).filter((n) => statSync(join(fixturesDir, "valid", n)).isDirectory()).sort();

export function tempDir(prefix = "f3s-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Copies a case's test-only secrets with the modes git cannot keep (0700 dirs, 0600 files). */
export function privateSecrets(caseName: string): string {
  const dir = join(tempDir(), "secrets");
  // dereference: a case may share another case's secrets through a link (export-datasets).
  cpSync(join(fixturesDir, "valid", caseName, "secrets"), dir, { recursive: true, dereference: true });
  const fix = (p: string) => {
    chmodSync(p, statSync(p).isDirectory() ? 0o700 : 0o600);
    if (statSync(p).isDirectory()) for (const n of readdirSync(p)) fix(join(p, n));
  };
  fix(dir);
  return dir;
}

export interface Built {
  result: BuildResult;
  outDir: string;
  secretsDir: string;
}

export async function buildCase(caseName: string, opts: { secretsDir?: string; outDir?: string; spec?: string } = {}): Promise<Built> {
  const secretsDir = opts.secretsDir ?? privateSecrets(caseName);
  const outDir = opts.outDir ?? join(tempDir(), "out");
  const result = await build({
    specPath: opts.spec ?? join(fixturesDir, "valid", caseName, "spec.yaml"),
    outDir,
    secretsDir,
    now: new Date(),
  });
  return { result, outDir, secretsDir };
}

/** A tar entry as the tarball tests see it (the reader is the one show and diff use). */
export interface TarHeader extends Omit<TarFile, "path"> {
  name: string;
  size: number;
}

export function readTarGz(data: Buffer): TarHeader[] {
  return readTarGzBuffer(data).map(({ path, ...rest }) => ({ name: path, size: rest.content.length, ...rest }));
}

/** Every tarball of a build, by file name, with its raw entries. */
export function readOutRaw(outDir: string): Map<string, TarHeader[]> {
  const map = new Map<string, TarHeader[]>();
  for (const n of readdirSync(outDir).filter((n) => n.endsWith(".tar.gz")).sort()) map.set(n, readTarGz(readFileSync(join(outDir, n))));
  return map;
}

/** Every tarball of a build, by file name: a host's as the files of its release at the paths they are installed to. */
export function readOut(outDir: string): Map<string, TarHeader[]> {
  const map = readOutRaw(outDir);
  for (const [n, entries] of map) {
    const release = releaseOf(entries.map((e) => ({ ...e, path: e.name })));
    if (release) map.set(n, release.files.map(({ path, ...rest }) => ({ ...rest, name: path })));
  }
  return map;
}

/** Extracts a tarball with the system's tar (as the hosts will) into a fresh directory: a host's root. */
export function extractRoot(tarball: string): string {
  const dir = tempDir("f3s-root-");
  execFileSync("tar", ["-xzpf", tarball, "-C", dir]);
  return dir;
}

/**
 * A host tarball's release as a tree of the paths its files are installed to (the directory the
 * tarball stages it in); any other tarball extracted as it is.
 */
export function extract(tarball: string): string {
  const root = extractRoot(tarball);
  for (const state of ["var/db/f3s", "var/lib/f3s"]) {
    const staged = join(root, state, "staged");
    if (existsSync(staged)) return join(root, state, "releases", readFileSync(staged, "utf8").trim());
  }
  return root;
}

export function listFiles(dir: string, base = ""): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name), `${base}${e.name}/`) : [`${base}${e.name}`],
  ).sort();
}

/** True when `tool` runs here. In CI (CI=true) a missing tool is a failure, never a silent skip. */
export function hasTool(tool: string, args: string[] = ["--version"]): boolean {
  const ok = spawnSync(tool, args, { stdio: "ignore" }).error === undefined;
  if (!ok && process.env.CI) throw new Error(`${tool} is required in CI; .ci/run installs it`);
  return ok;
}

/** A seeded generator (mulberry32): the same seed gives the same sequence, so failures reproduce. */
export function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The CLI in this process (runMain), as a user runs it from `cwd`: exit code and what it printed. */
export async function runCli(args: string[], cwd = tempDir()): Promise<{ code: number; stdout: string; stderr: string }> {
  const { runMain } = await import("../src/cli.js");
  let stdout = "";
  let stderr = "";
  const code = await runMain(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false, env: {}, cwd, now: () => new Date() });
  return { code, stdout, stderr };
}
