// Every change to an existing secrets directory is one transaction. New files are written into
// `.txn/` inside the directory, then a journal listing every step and the new index.json is
// written and renamed into place: that rename is the commit point. Then the steps are applied
// (renames only), index.json is replaced, and `.txn/` removed. A run killed before the commit point
// changed nothing (the next command drops `.txn/`); a run killed after it is finished by the next
// command that writes the directory (recoverSecrets, under the same lock). Every step can run
// twice: a put whose staged file is gone, or a move whose destination exists, was applied already.
// A journal is read like any secrets file (no link, capped, ours) and every step is confined: names
// of the directory's own layout, resolved inside it, through no symbolic link. A planted or damaged
// journal is refused before any step runs.
import { existsSync, lstatSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { error, type Diagnostic } from "../diag/diagnostic.js";
import { UnsafeFileError, readSafely, writingTo } from "../fs-safe.js";

export const TXN_DIR = ".txn";
const JOURNAL = "journal.json";

type Step = { op: "put"; staged: string; target: string } | { op: "move"; from: string; to: string };

interface Journal {
  format: 1;
  steps: Step[];
  /** The complete new index.json. */
  index: string;
}

/**
 * Fault injection for the kill tests (test/secrets-kill.test.ts): with F3S_FAULT_KILL_AT=N the
 * process kills itself with SIGKILL right before its Nth write to the secrets directory, exactly as
 * a power cut or `kill -9` would stop it there. Unset, this costs one comparison per write.
 */
const killAt = Number(process.env.F3S_FAULT_KILL_AT ?? 0);
let writes = 0;
function beforeWrite() {
  if (killAt > 0 && ++writes === killAt) process.kill(process.pid, "SIGKILL");
}

function writeFile(path: string, data: string | Buffer) {
  beforeWrite();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writingTo(path, () => writeFileSync(path, data, { mode: 0o600 }));
}

function rename(from: string, to: string) {
  beforeWrite();
  mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
  renameSync(from, to);
}

/** The top-level entries of a secrets directory a step may touch (store.ts, paths). */
const LAYOUT = new Set(["ca", "server", "clients", "zfs", "ca-next", "ca-prev", "next", "retired"]);
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/** A path a journal step may name: inside the directory's layout, no `..`, no absolute path. */
export function confinedStep(rel: unknown): rel is string {
  if (typeof rel !== "string" || rel.length > 512 || rel.includes("..")) return false;
  const parts = rel.split("/");
  return parts.length >= 2 && LAYOUT.has(parts[0]!) && parts.every((p) => SEGMENT.test(p));
}

/** Every directory between `dir` and `rel` is a real directory (or not there yet), not a link out. */
function throughDirectories(dir: string, rel: string): boolean {
  const target = resolve(dir, rel);
  if (!target.startsWith(dir + sep)) return false;
  let p = dir;
  for (const part of rel.split("/").slice(0, -1)) {
    p = join(p, part);
    try {
      if (!lstatSync(p).isDirectory()) return false;
    } catch {
      return true; // not made yet: rename's mkdir makes a real one
    }
  }
  return true;
}

class DamagedJournal extends Error {}

function parseJournal(text: string): Journal {
  let j: Partial<Journal>;
  try {
    j = JSON.parse(text) as Partial<Journal>;
  } catch {
    throw new DamagedJournal("it is not JSON");
  }
  if (j?.format !== 1 || !Array.isArray(j.steps) || typeof j.index !== "string") throw new DamagedJournal("it is not an f3s-gen journal (format, steps, index)");
  for (const s of j.steps as Partial<Record<string, unknown>>[]) {
    const ok =
      (s?.op === "put" && typeof s.staged === "string" && /^\d{1,6}$/.test(s.staged) && confinedStep(s.target)) ||
      (s?.op === "move" && confinedStep(s.from) && confinedStep(s.to));
    if (!ok) throw new DamagedJournal(`a step names a path outside the secrets directory's layout: ${JSON.stringify(s).slice(0, 200)}`);
  }
  return j as Journal;
}

function apply(dir: string, journal: Journal) {
  const txn = join(dir, TXN_DIR);
  for (const step of journal.steps) {
    for (const rel of step.op === "put" ? [step.target] : [step.from, step.to]) {
      if (!throughDirectories(dir, rel)) throw new DamagedJournal(`${rel} leads through a link or out of the secrets directory`);
    }
    if (step.op === "put" && existsSync(join(txn, step.staged))) rename(join(txn, step.staged), join(dir, step.target));
    // Done once its destination exists: a later put may already have reused the source's name
    // (the new key where the old one was), and that file must not be moved aside too.
    if (step.op === "move" && !existsSync(join(dir, step.to)) && existsSync(join(dir, step.from))) rename(join(dir, step.from), join(dir, step.to));
  }
  writeFile(join(txn, "index.json"), journal.index);
  rename(join(txn, "index.json"), join(dir, "index.json"));
  beforeWrite();
  rmSync(txn, { recursive: true, force: true });
}

/** A journal committed but not applied, if any: what an interrupted change left to finish. */
export function pendingJournal(dir: string): string | undefined {
  const file = join(dir, TXN_DIR, JOURNAL);
  return existsSync(file) ? file : undefined;
}

/**
 * Finishes a committed change a killed run left, or drops an uncommitted one. Returns what it did,
 * for the user ("finished an interrupted change"), or undefined when there was nothing.
 */
export function recoverSecrets(dir: string): string | undefined {
  const txn = join(dir, TXN_DIR);
  if (!existsSync(txn)) return undefined;
  const file = pendingJournal(dir);
  if (!file) {
    rmSync(txn, { recursive: true, force: true });
    return "dropped the files of a change that was interrupted before it was committed";
  }
  const damaged = (why: string): never => {
    throw new SecretsJournalError({
      ...error("secrets.journal", "", `the journal of an interrupted secrets change cannot be used: ${why}; nothing was applied from it`, `compare the secrets directory with your backup; to abandon the change, remove ${txn} (files it already moved stay where they are)`),
      location: { file, line: 1, col: 1 },
    });
  };
  try {
    if (!lstatSync(txn).isDirectory()) throw new DamagedJournal(`${TXN_DIR} is not a directory`);
    const journal = parseJournal(readSafely(file, { maxBytes: 16 << 20, check: ownedPrivately }).toString("utf8"));
    // Every step is checked before the first one runs.
    for (const step of journal.steps) for (const rel of step.op === "put" ? [step.target] : [step.from, step.to]) if (!throughDirectories(dir, rel)) throw new DamagedJournal(`${rel} leads through a link or out of the secrets directory`);
    apply(dir, journal);
  } catch (e) {
    if (e instanceof DamagedJournal) return damaged(e.message);
    if (e instanceof UnsafeFileError) return damaged(e.reason);
    throw e;
  }
  return "finished a change that was interrupted after it was committed";
}

/** Owned by the user running f3s-gen and private to it: the same rule as every secrets file. */
export function ownedPrivately(st: { uid: number; mode: number }): string | undefined {
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return `owned by uid ${st.uid}, not by the user running f3s-gen (uid ${uid})`;
  if (st.mode & 0o077) return `accessible to other users (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")})`;
  return undefined;
}

/** A journal that cannot be applied: the diagnostic for the user (store.ts turns it into a SecretsError). */
export class SecretsJournalError extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

/** What issuing code adds steps to: the real transaction, or a plan (--dry-run) that writes nothing. */
export interface Transaction {
  put(target: string, data: string | Buffer): void;
  move(from: string, to: string): void;
  commit(index: string): void;
  abort(): void;
}

/** `pki ... --dry-run`: every step is worked out (keys generated, certificates issued) and none is written. */
export class PlannedTransaction implements Transaction {
  readonly steps: Step[] = [];
  put(target: string) {
    this.steps.push({ op: "put", staged: `${this.steps.length}`, target });
  }
  move(from: string, to: string) {
    this.steps.push({ op: "move", from, to });
  }
  commit() {}
  abort() {}
}

export class SecretsTransaction implements Transaction {
  private readonly steps: Step[] = [];
  private readonly txn: string;
  private committed = false;

  constructor(private readonly dir: string) {
    this.txn = join(dir, TXN_DIR);
    rmSync(this.txn, { recursive: true, force: true }); // recoverSecrets ran before: nothing of value here
    // Not recursive: on a read-only file system Node's recursive mkdir reports ENOENT, not EROFS.
    mkdirSync(this.txn, { mode: 0o700 });
  }

  /** A new file at `target` (relative to the secrets directory), staged until commit. */
  put(target: string, data: string | Buffer) {
    const staged = `${this.steps.length}`;
    writeFile(join(this.txn, staged), data);
    this.steps.push({ op: "put", staged, target });
  }

  /** Moves an existing file aside at commit (a retired certificate or key: never deleted). */
  move(from: string, to: string) {
    this.steps.push({ op: "move", from, to });
  }

  /** Drops what was staged, unless committed: a command refused after staging leaves no key behind. */
  abort() {
    if (!this.committed) rmSync(this.txn, { recursive: true, force: true });
  }

  /** Commits the staged files and moves with `index` (its text) in one step, then applies them. */
  commit(index: string) {
    const journal: Journal = { format: 1, steps: this.steps, index };
    writeFile(join(this.txn, `${JOURNAL}.tmp`), JSON.stringify(journal));
    rename(join(this.txn, `${JOURNAL}.tmp`), join(this.txn, JOURNAL)); // the commit point
    this.committed = true;
    // A step apply refuses (a directory replaced by a link since) is left for the next command,
    // which reports it with the journal's file and what to do.
    try {
      apply(this.dir, journal);
    } catch (e) {
      if (!(e instanceof DamagedJournal)) throw e;
      recoverSecrets(this.dir);
    }
  }
}
