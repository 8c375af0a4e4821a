// One writer at a time for out/ and the secrets directory: two builds at once would race on the
// staging directories and the index. A lock is a file next to the directory (it may not exist
// yet) created with O_EXCL and holding the owner's pid; a lock whose process is gone (killed) is
// stale and taken over. A second run waits for the first instead of failing.
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export class LockError extends Error {}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

function tryLock(file: string): boolean {
  try {
    const fd = openSync(file, "wx", 0o600);
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    const pid = Number(readFileSync(file, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) {
      rmSync(file, { force: true }); // its owner is gone
      return false;
    }
    return false;
  }
}

/**
 * `<dir>.lock` beside the directory; while its parent does not exist yet (a first build creates
 * it), a hidden file in the nearest ancestor that does, named after the rest of the path.
 */
function lockFile(dir: string): string {
  const abs = resolve(dir);
  if (existsSync(dirname(abs))) return `${abs}.lock`;
  let ancestor = dirname(abs);
  while (!existsSync(ancestor) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
  return join(ancestor, `.${relative(ancestor, abs).replace(/[/\\]/g, "_")}.lock`);
}

/** Runs `fn` holding the locks of `dirs` (taken in a fixed order), waiting up to `waitMs` for them. */
export async function withLocks<T>(dirs: string[], fn: () => Promise<T>, waitMs = 120_000): Promise<T> {
  const files = [...new Set(dirs.map(lockFile))].sort();
  const held: string[] = [];
  try {
    for (const file of files) {
      const until = Date.now() + waitMs;
      while (!tryLock(file)) {
        if (Date.now() > until) throw new LockError(`another f3s-gen is still writing ${dirs.join(" or ")} (lock ${file}); wait for it, or remove the lock if no f3s-gen runs`);
        await new Promise((r) => setTimeout(r, 50));
      }
      held.push(file);
    }
    return await fn();
  } finally {
    for (const file of held.reverse()) rmSync(file, { force: true });
  }
}
