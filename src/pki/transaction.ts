// Every change to an existing secrets directory is one transaction. New files are written into
// `.txn/` inside the directory, then a journal listing every step and the new index.json is
// written and renamed into place: that rename is the commit point. Then the steps are applied
// (renames only), index.json is replaced, and `.txn/` removed. A run killed before the commit point
// changed nothing (the next command drops `.txn/`); a run killed after it is finished by the next
// command that writes the directory (recoverSecrets, under the same lock). Every step can run
// twice: a put whose staged file is gone, or a move whose destination exists, was applied already.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

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
  writeFileSync(path, data, { mode: 0o600 });
}

function rename(from: string, to: string) {
  beforeWrite();
  mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
  renameSync(from, to);
}

function apply(dir: string, journal: Journal) {
  const txn = join(dir, TXN_DIR);
  for (const step of journal.steps) {
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
  apply(dir, JSON.parse(readFileSync(file, "utf8")) as Journal);
  return "finished a change that was interrupted after it was committed";
}

export class SecretsTransaction {
  private readonly steps: Step[] = [];
  private readonly txn: string;

  constructor(private readonly dir: string) {
    this.txn = join(dir, TXN_DIR);
    rmSync(this.txn, { recursive: true, force: true }); // recoverSecrets ran before: nothing of value here
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

  /** Commits the staged files and moves with `index` (its text) in one step, then applies them. */
  commit(index: string) {
    const journal: Journal = { format: 1, steps: this.steps, index };
    writeFile(join(this.txn, `${JOURNAL}.tmp`), JSON.stringify(journal));
    rename(join(this.txn, `${JOURNAL}.tmp`), join(this.txn, JOURNAL)); // the commit point
    apply(this.dir, journal);
  }
}
