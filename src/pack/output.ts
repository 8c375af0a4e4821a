// Writes out/ as a whole or not at all: files go to a sibling staging directory that replaces out/
// by rename. A failed or interrupted build leaves the previous output exactly as it was.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync, statSync } from "node:fs";
import { basename, dirname, join, sep } from "node:path";
import { realPathOf, writingTo } from "../fs-safe.js";

/** Marks a directory as f3s-gen's output, so that --out never replaces anything else. */
export const OUT_MARKER = ".f3s-gen-output";

export class OutputError extends Error {}

function siblings(outDir: string, kind: "tmp" | "old"): string[] {
  const parent = dirname(outDir);
  if (!existsSync(parent)) return [];
  const prefix = `${basename(outDir)}.${kind}-`;
  return readdirSync(parent)
    .filter((n) => n.startsWith(prefix))
    .map((n) => join(parent, n));
}

/**
 * Undoes what an interrupted run can leave: a staging directory (dropped) and, if out/ itself is
 * missing, the previous output moved aside just before the final rename (moved back).
 */
export function recoverOutput(outDir: string) {
  for (const tmp of siblings(outDir, "tmp")) rmSync(tmp, { recursive: true, force: true });
  const old = siblings(outDir, "old");
  if (!existsSync(outDir) && old.length > 0) renameSync(old[0]!, outDir);
  for (const o of siblings(outDir, "old")) rmSync(o, { recursive: true, force: true });
}

/**
 * out/ is replaced as a whole: secrets inside it (or it inside the secrets) would be destroyed.
 * Compared after resolving symbolic links, which could otherwise hide the overlap.
 */
export function checkSeparate(outDir: string, secretsDir: string) {
  const a = realPathOf(outDir);
  const b = realPathOf(secretsDir);
  if (a === b || b.startsWith(a + sep) || a.startsWith(b + sep)) {
    throw new OutputError(`--out ${outDir} and --secrets ${secretsDir} overlap; out/ is replaced as a whole by every build, so keep the secrets outside it`);
  }
}

export function checkOutputDir(outDir: string) {
  if (!existsSync(outDir)) return;
  if (!statSync(outDir).isDirectory()) throw new OutputError(`${outDir} exists and is not a directory`);
  const entries = readdirSync(outDir);
  if (entries.length > 0 && !entries.includes(OUT_MARKER)) {
    throw new OutputError(`refusing to replace ${outDir}: it is not empty and was not written by f3s-gen (no ${OUT_MARKER}); choose another --out`);
  }
}

/**
 * The next out/, filled one file at a time (so that a build holds one host's tarball in memory, not
 * every host's) in a sibling staging directory that replaces out/ by rename on commit.
 */
export class Staging {
  private readonly dir: string;
  private done = false;

  constructor(private readonly outDir: string) {
    recoverOutput(outDir);
    checkOutputDir(outDir);
    this.dir = `${outDir}.tmp-${process.pid}`;
    // Explicit mode: under umask 000 the parents would otherwise be created 0777.
    mkdirSync(dirname(outDir), { recursive: true, mode: 0o755 });
    mkdirSync(this.dir, { mode: 0o700 });
    try {
      this.add(OUT_MARKER, Buffer.from("This directory is replaced as a whole by every f3s-gen build.\n"));
    } catch (e) {
      this.abort(); // a full disk: no staging directory left behind
      throw e;
    }
  }

  /** Writes one file (mode 0600: tarballs carry private keys). */
  add(name: string, data: Buffer) {
    // Hosts are packed concurrently: one still running after another failed must not make the
    // dropped staging directory again.
    if (this.done) throw new OutputError("the build was stopped by an earlier error");
    mkdirSync(dirname(join(this.dir, name)), { recursive: true, mode: 0o700 });
    writingTo(join(this.dir, name), () => writeFileSync(join(this.dir, name), data, { mode: 0o600 }));
  }

  /** Drops everything staged; out/ stays as it was. */
  abort() {
    if (!this.done) rmSync(this.dir, { recursive: true, force: true });
    this.done = true;
  }

  /** Replaces out/ with what was staged. `beforeSwap` runs last before the swap; if it throws, nothing is replaced. */
  commit(hooks: { beforeSwap?: () => void } = {}) {
    try {
      hooks.beforeSwap?.();
    } catch (e) {
      this.abort();
      throw e;
    }
    // Two renames with nothing asynchronous between them; recoverOutput() repairs the one moment
    // a hard kill could still hit.
    const old = `${this.outDir}.old-${process.pid}`;
    const hadOld = existsSync(this.outDir);
    if (hadOld) renameSync(this.outDir, old);
    renameSync(this.dir, this.outDir);
    this.done = true;
    if (hadOld) rmSync(old, { recursive: true, force: true });
  }
}

/** Replaces outDir with exactly `files` (name -> bytes), mode 0600. */
export function writeOutput(outDir: string, files: Map<string, Buffer>, hooks: { beforeSwap?: () => void } = {}) {
  const staging = new Staging(outDir);
  try {
    for (const [name, data] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) staging.add(name, data);
  } catch (e) {
    staging.abort();
    throw e;
  }
  staging.commit(hooks);
}
