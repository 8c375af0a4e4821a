// Reading a file that someone else may have replaced: checked on the descriptor that is read, not
// by name first and opened after (a rename between the two would swap what is read). The open
// does not follow a final symbolic link (unless asked) and does not wait on a FIFO; fstat on the
// open descriptor says what it really is; at most `maxBytes` are read, whatever the file claims.
import { closeSync, constants, existsSync, fstatSync, openSync, readSync, realpathSync, type Stats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

/** A file that is not what f3s-gen expects there: the user's to fix, with the file named (never "a bug"). */
export class FileProblem extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

export class UnsafeFileError extends FileProblem {
  constructor(
    path: string,
    /** What the file is instead of a small regular file, in words ("a symbolic link"). */
    readonly reason: string,
  ) {
    super(path, `${path}: ${reason}`);
  }
}

export interface SafeReadOptions {
  maxBytes: number;
  /** Follow a symbolic link at the last component (the spec may be one); never for secrets. */
  followLinks?: boolean;
  /** Checks on the open descriptor's stat (owner, mode) before a byte is read; returns a reason to refuse. */
  check?: (st: Stats) => string | undefined;
}

const kindOf = (st: Stats) => (st.isFIFO() ? "a FIFO" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : st.isDirectory() ? "a directory" : st.isSocket() ? "a socket" : "not a regular file");

/** Opens `path` read-only, checked; the caller closes the descriptor. */
export function openChecked(path: string, opts: SafeReadOptions): { fd: number; st: Stats } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (opts.followLinks ? 0 : constants.O_NOFOLLOW));
  } catch (e) {
    // O_NOFOLLOW on a link: ELOOP on Linux, EMLINK on FreeBSD, EFTYPE on macOS.
    if (["ELOOP", "EMLINK", "EFTYPE"].includes((e as NodeJS.ErrnoException).code ?? "")) throw new UnsafeFileError(path, "a symbolic link");
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UnsafeFileError(path, kindOf(st));
    if (st.size > opts.maxBytes) throw new UnsafeFileError(path, `${st.size} bytes, far more than such a file holds (at most ${opts.maxBytes} are read)`);
    const refused = opts.check?.(st);
    if (refused) throw new UnsafeFileError(path, refused);
    return { fd, st };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The whole of a small regular file, read through the descriptor that was checked. */
export function readSafely(path: string, opts: SafeReadOptions): Buffer {
  const { fd, st } = openChecked(path, opts);
  try {
    // Until the end of the file, but never past maxBytes: a file that grew after fstat is refused.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(Math.max(st.size - total, 0) + 1, opts.maxBytes + 1 - total, 1 << 20));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > opts.maxBytes) throw new UnsafeFileError(path, `grew past ${opts.maxBytes} bytes while it was read`);
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** Whether a failed system call says "this path exists but is not what it should be". */
export const isUnsafe = (e: unknown): e is UnsafeFileError => e instanceof UnsafeFileError;

/**
 * Runs a write of `path`; a failure of the write itself (ENOSPC from write(2) after the open
 * succeeded) carries no path in Node, so it is given this one: the message names the file.
 */
export function writingTo<T>(path: string, write: () => T): T {
  try {
    return write();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err && typeof err === "object" && err.code && !err.path) err.path = path;
    else if (err && typeof err === "object" && err.code === "ENOSPC") err.path = path; // the file meant, not a temporary name
    throw e;
  }
}

/** The real path of `p`, or of its nearest existing ancestor with the rest appended (p may not exist yet). */
export function realPathOf(p: string): string {
  const abs = resolve(p);
  if (existsSync(abs)) return realpathSync(abs);
  const parent = dirname(abs);
  return parent === abs ? abs : join(realPathOf(parent), basename(abs));
}
