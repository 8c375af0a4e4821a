// A file the spec names (the CARP password's passwordFile, an override's source): relative to the
// spec's directory, read once through fs-safe (a regular file, size-capped; a link is followed, as
// the user may keep such files elsewhere), every failure a reason and a hint for a located error.
import { dirname, isAbsolute, resolve } from "node:path";
import type { Stats } from "node:fs";
import { UnsafeFileError, readSafely } from "../fs-safe.js";

export type BesideSpec = { ok: true; file: string; bytes: Buffer } | { ok: false; file?: string; problem: string; hint?: string };

export interface BesideSpecOptions {
  /** The spec file's path; absent for a spec given as text, where only absolute names work. */
  specPath?: string;
  maxBytes: number;
  /** A further rule on the open file (e.g. private to its owner): a reason when it is broken. */
  check?: (st: Stats) => string | undefined;
}

export function readBesideSpec(name: string, opts: BesideSpecOptions): BesideSpec {
  if (!opts.specPath && !isAbsolute(name)) return { ok: false, problem: `${JSON.stringify(name)} is relative, and this spec has no file to be relative to`, hint: "give an absolute path" };
  const file = isAbsolute(name) ? name : resolve(dirname(opts.specPath!), name);
  try {
    return { ok: true, file, bytes: readSafely(file, { maxBytes: opts.maxBytes, followLinks: true, check: opts.check }) };
  } catch (e) {
    if (e instanceof UnsafeFileError) return { ok: false, file, problem: `${file} is ${e.reason}` };
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { ok: false, file, problem: `${file} does not exist` };
    if (code === "EACCES") return { ok: false, file, problem: `${file} cannot be read (permission denied)`, hint: "run f3s-gen as the user who owns it" };
    if (code === "EISDIR" || code === "ELOOP" || code === "ENOTDIR") return { ok: false, file, problem: `${file} cannot be read (${code})` };
    throw e;
  }
}
