// One writer at a time for out/ and the secrets directory: two builds at once would race on the
// staging directories and the index. A second run waits for the first instead of failing.
//
// The lock is a file beside the directory, named after the directory's real path (the same
// directory named through a symbolic link gets the same lock). It is made whole and then linked
// into place (link(2) fails if the name exists), so nobody ever reads a half-written lock; it holds
// "<pid> <nonce>". A lock whose process is gone (killed) is stale, and breaking it cannot remove a
// live one: the breaker first claims that exact lock by creating `<lock>.break-<nonce>` (O_EXCL:
// one breaker per stale lock), reads the lock again, and removes it only if it is still the one
// claimed. Nobody else removes a lock with that nonce (its owner is dead, other breakers lost the
// claim), so what is removed is the dead lock, never a live one that replaced it.
//
// A lock path that is not a regular file (a FIFO, a link to /dev/zero) is refused, never opened for
// reading in a way that could block or fill the memory. On a read-only file system nobody can write
// the directory, so there is nothing to exclude: the command runs without a lock (and fails, naming
// the file, only if it really has something to write).
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, linkSync, openSync, rmSync, writeSync, constants } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { UnsafeFileError, readSafely, realPathOf, writingTo } from "./fs-safe.js";

export class LockError extends Error {}

/** A lock file holds "<pid> <nonce>\n": far below this. */
const MAX_LOCK_BYTES = 128;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

export interface Holder {
  pid: number;
  nonce: string;
}

/** The lock's owner, or undefined while it cannot be read (gone already). Refuses what is not a lock file. */
function readHolder(file: string): Holder | undefined | "garbled" {
  let text: string;
  try {
    text = readSafely(file, { maxBytes: MAX_LOCK_BYTES }).toString("utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    if (e instanceof UnsafeFileError) throw new LockError(`the lock ${file} is ${e.reason.startsWith("a ") ? e.reason : `not a lock file (${e.reason})`}: f3s-gen makes it a regular file; remove it (rm ${file}) and run again`);
    throw e;
  }
  const m = /^(\d{1,10})(?: ([0-9a-f]{16,64}))?\n$/.exec(text);
  if (!m) return "garbled";
  // "<pid>" alone: a lock of a version before the nonce, claimed by its pid.
  return { pid: Number(m[1]), nonce: m[2] ?? `pid${m[1]}` };
}

/** A file with `content`, made whole beside `file` and linked to it: false if `file` exists. */
function createWhole(file: string, content: string): boolean {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  let fd: number | undefined;
  try {
    fd = writingTo(file, () => openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
    writingTo(file, () => writeSync(fd!, content));
    closeSync(fd);
    fd = undefined;
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST" && existsSync(tmp)) return false;
    throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
    try {
      rmSync(tmp, { force: true }); // also after ENOSPC: no empty file is left behind
    } catch {
      // the path cannot hold a file at all (ENOTDIR): nothing was made
    }
  }
}

/** Removes `file` if it still holds `dead` (whose process is gone), claiming it first. Exported for the lock tests. */
export function breakStale(file: string, dead: Holder, me: string) {
  const claim = `${file}.break-${dead.nonce}`;
  if (!createWhole(claim, me)) {
    // Another breaker holds this claim; if it died too, its claim is stale in turn.
    const breaker = readHolder(claim);
    if (breaker && breaker !== "garbled" && !alive(breaker.pid)) breakStale(claim, breaker, me);
    return;
  }
  try {
    const now = readHolder(file);
    if (now && now !== "garbled" && now.nonce === dead.nonce) rmSync(file, { force: true });
  } finally {
    rmSync(claim, { force: true });
  }
}

/** Takes `file` once: true if held now. */
function tryLock(file: string, me: string, seenGarbled: Map<string, number>): boolean {
  if (createWhole(file, me)) return true;
  const holder = readHolder(file);
  if (holder === "garbled") {
    // Not written by a run of this version (made whole, so never half-written by one): left for the
    // user after a while rather than removed, since its owner is unknown.
    seenGarbled.set(file, (seenGarbled.get(file) ?? 0) + 1);
    return false;
  }
  if (holder && !alive(holder.pid)) breakStale(file, holder, me);
  return false;
}

/**
 * `<dir>.lock` beside the directory (by its real path); while its parent does not exist yet (a first
 * build creates it), a hidden file in the nearest ancestor that does, named after the rest of the path.
 */
export function lockFile(dir: string): string {
  const real = realPathOf(dir);
  if (existsSync(dirname(real))) return `${real}.lock`;
  let ancestor = dirname(real);
  while (!existsSync(ancestor) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
  return join(ancestor, `.${relative(ancestor, real).replace(/[/\\]/g, "_")}.lock`);
}

/** Runs `fn` holding the locks of `dirs` (taken in a fixed order), waiting up to `waitMs` for them. */
export async function withLocks<T>(dirs: string[], fn: () => Promise<T>, waitMs = 120_000): Promise<T> {
  const files = [...new Set(dirs.map(lockFile))].sort();
  const me = `${process.pid} ${randomBytes(16).toString("hex")}\n`;
  const held: string[] = [];
  const garbled = new Map<string, number>();
  try {
    for (const file of files) {
      const until = Date.now() + waitMs;
      for (;;) {
        let got: boolean;
        try {
          got = tryLock(file, me, garbled);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EROFS") break; // nobody can write there: nothing to exclude
          throw e; // a LockError, or a system error naming the lock (ENOSPC, EACCES): said as one line
        }
        if (got) {
          held.push(file);
          break;
        }
        if (Date.now() > until || (garbled.get(file) ?? 0) > 40) {
          const why = garbled.has(file) ? `${basename(file)} does not hold a pid f3s-gen wrote` : `another f3s-gen is still writing ${dirs.join(" or ")}`;
          throw new LockError(`${why} (lock ${file}); wait for it, or remove the lock if no f3s-gen runs`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return await fn();
  } finally {
    // Only a lock that is still ours (by its nonce) is removed.
    for (const file of held.reverse()) {
      try {
        const holder = readHolder(file);
        if (holder && holder !== "garbled" && `${holder.pid} ${holder.nonce}\n` === me) rmSync(file, { force: true });
      } catch {
        // replaced by something that is not a lock: not ours to remove
      }
    }
  }
}
