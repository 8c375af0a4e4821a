// Shared test helpers: fixture secrets in a private temp copy, builds into temp dirs, and a small
// tar reader that exposes the raw header fields the tarball contract is about.
import { cpSync, mkdtempSync, chmodSync, readdirSync, statSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { execFileSync, spawnSync } from "node:child_process";
import { build, type BuildResult } from "../src/pipeline.js";
import { packageRoot } from "../src/paths.js";

export const fixturesDir = join(packageRoot, "fixtures");
export const validCases = readdirSync(join(fixturesDir, "valid")).filter((n) => statSync(join(fixturesDir, "valid", n)).isDirectory()).sort();

export function tempDir(prefix = "f3s-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Copies a case's test-only secrets with the modes git cannot keep (0700 dirs, 0600 files). */
export function privateSecrets(caseName: string): string {
  const dir = join(tempDir(), "secrets");
  cpSync(join(fixturesDir, "valid", caseName, "secrets"), dir, { recursive: true });
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

export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  uname: string;
  gname: string;
  content: Buffer;
}

const field = (b: Buffer, off: number, len: number) => b.subarray(off, off + len).toString("latin1").replace(/\0.*$/s, "");
const octal = (b: Buffer, off: number, len: number) => parseInt(field(b, off, len).trim() || "0", 8);

/** Reads a .tar.gz into its headers (ustar and pax path records). */
export function readTarGz(data: Buffer): TarHeader[] {
  const tar = gunzipSync(data);
  const out: TarHeader[] = [];
  let off = 0;
  let paxPath: string | undefined;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = octal(h, 124, 12);
    const typeflag = field(h, 156, 1) || "0";
    const content = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (typeflag === "x") {
      const m = /\d+ path=([^\n]*)\n/.exec(content.toString("utf8"));
      paxPath = m?.[1];
      continue;
    }
    const prefix = field(h, 345, 155);
    const name = paxPath ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    paxPath = undefined;
    out.push({ name, mode: octal(h, 100, 8), uid: octal(h, 108, 8), gid: octal(h, 116, 8), size, mtime: octal(h, 136, 12), typeflag, uname: field(h, 265, 32), gname: field(h, 297, 32), content: Buffer.from(content) });
  }
  return out;
}

/** Every tarball of a build, by file name, as extracted entries. */
export function readOut(outDir: string): Map<string, TarHeader[]> {
  const map = new Map<string, TarHeader[]>();
  for (const n of readdirSync(outDir).filter((n) => n.endsWith(".tar.gz")).sort()) map.set(n, readTarGz(readFileSync(join(outDir, n))));
  return map;
}

/** Extracts a tarball with the system's tar (as the hosts will) into a fresh directory. */
export function extract(tarball: string): string {
  const dir = tempDir("f3s-root-");
  execFileSync("tar", ["-xzpf", tarball, "-C", dir]);
  return dir;
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
