// The secrets directory as files: where each secret lives, how a file is read (checked first: a
// regular file, not a link, device or FIFO, of sane size) and written (by rename, 0600), the index
// of what was issued and retired, the permission check, and the moves that retire a certificate.
// What is issued when, and from which CA, is the policy's (secrets.ts, manage.ts, rotation.ts).
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, renameSync, rmSync, writeFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { error, type Diagnostic } from "../diag/diagnostic.js";
import { UnsafeFileError, readSafely, writingTo } from "../fs-safe.js";
import { SecretsJournalError, ownedPrivately, type Transaction, pendingJournal, recoverSecrets } from "./transaction.js";

/** Which certificate and key: by kind, so that a client's name can never select the server's or the CA's files. */
export type CertTarget = { kind: "ca" } | { kind: "server" } | { kind: "client"; name: string };
export const targetName = (t: CertTarget) => (t.kind === "ca" ? "CA" : t.kind === "server" ? "server" : t.name);

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface RetiredCert {
  /** "CA", "server" or the client's name. */
  name: string;
  /** Absent in records made before it was kept; files are retired by kind, so a name never decides. */
  kind?: CertTarget["kind"];
  serial: string;
  sha256: string;
  reason: "removed" | "revoked" | "renewed";
  at: string;
}

/** index.json: what has been issued, so that a missing file is told apart from a new client. */
/**
 * A CA rotation in stages (pki rotate-ca): "trust" while every host learns to trust the next CA
 * (ca-next/) besides the current one, and the storage nodes to accept the clients' next
 * certificates (next/, already issued from it) besides their current ones; "reissue" once every
 * host presents its next certificate (the CA before is kept in ca-prev/, and the clients'
 * previous certificates stay accepted), until the last stage drops both.
 */
export interface Rotation {
  stage: "trust" | "reissue";
  /** The clients' certificates before the re-issue ("reissue" only): retired/client-<name>-<serial>/. */
  previousClients?: { name: string; serial: string }[];
}

export interface SecretsIndex {
  format: 1;
  /** The cluster these secrets belong to (absent in directories made before it was recorded). */
  cluster?: { domain: string; ca: string };
  clients: string[];
  zfsKeys: string[];
  retired: RetiredCert[];
  rotation?: Rotation;
}

export const paths = {
  index: "index.json",
  caKey: "ca/ca-key.pem",
  caCert: "ca/ca-cert.pem",
  serverKey: "server/server-key.pem",
  serverCert: "server/server-cert.pem",
  clientKey: (name: string) => `clients/${name}-key.pem`,
  clientCert: (name: string) => `clients/${name}-cert.pem`,
  zfsKey: (fileName: string) => `zfs/${fileName}`,
  /** During a CA rotation: the next CA (stage "trust"), the previous one's certificate (stage "reissue"). */
  caNextKey: "ca-next/ca-key.pem",
  caNextCert: "ca-next/ca-cert.pem",
  caPrevCert: "ca-prev/ca-cert.pem",
  /** During a rotation's first stage: the certificates each host will present in the second. */
  next: (rel: string) => `next/${rel}`,
  retiredClientCert: (name: string, serial: string) => `retired/client-${name}-${serial}/${name}-cert.pem`,
  /** [certificate, key] of a target. */
  pair: (t: CertTarget): [string, string] =>
    t.kind === "ca" ? [paths.caCert, paths.caKey] : t.kind === "server" ? [paths.serverCert, paths.serverKey] : [paths.clientCert(t.name), paths.clientKey(t.name)],
};

export class SecretsError extends Error {
  /** This one and any found with it (every mismatch at once, not only the first). */
  readonly diagnostics: Diagnostic[];
  constructor(
    readonly diagnostic: Diagnostic,
    more: Diagnostic[] = [],
  ) {
    super(diagnostic.message);
    this.diagnostics = [diagnostic, ...more];
  }
}

/** Throws every error of `found` at once (warnings ride along), if there is one. */
export function throwIfErrors(found: Diagnostic[]) {
  if (!found.some((d) => d.severity === "error")) return;
  throw new SecretsError(found[0]!, found.slice(1));
}

export const fail = (dir: string, file: string, message: string, hint: string): never => {
  throw new SecretsError({ ...error("secrets", "", message, hint), location: { file: join(dir, file), line: 1, col: 1 } });
};

/** Writes a file by rename, so that a reader never sees half of it. Secrets are 0600. */
export function writeSecretFile(dir: string, rel: string, data: string | Buffer) {
  const target = join(dir, rel);
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  const tmp = `${target}.tmp-${process.pid}`;
  try {
    writingTo(target, () => writeFileSync(tmp, data, { mode: 0o600 }));
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true }); // no half-written copy of a secret left behind (ENOSPC)
    throw e;
  }
}

/** No secrets file is near this size; a larger one (or /dev/zero behind a link) is not read at all. */
export const MAX_SECRET_FILE_BYTES = 1 << 20;

/** A secrets file, checked before it is read: a regular file (not a link, device or FIFO) of sane size. */
export function readChecked(dir: string, rel: string): Buffer {
  try {
    // Checked on the descriptor that is read: a file swapped in after a check by name is not read.
    return readSafely(join(dir, rel), { maxBytes: MAX_SECRET_FILE_BYTES, check: ownedPrivately });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") fail(dir, rel, "missing secrets file", "restore it from your backup of the secrets directory; f3s-gen never regenerates secrets silently");
    if (e instanceof UnsafeFileError) {
      const hint = e.reason.startsWith("owned by") || e.reason.startsWith("accessible") ? `only the user running f3s-gen may own and read the secrets: chown/chmod it (chmod 600 ${join(dir, rel)})` : "secrets are plain files inside the secrets directory: restore it from your backup";
      fail(dir, rel, e.reason.startsWith("a ") || e.reason.startsWith("not ") ? `not a regular file (${e.reason})` : e.reason, hint);
    }
    throw e;
  }
}

export function read(dir: string, rel: string): string {
  return readChecked(dir, rel).toString("utf8");
}

export function parseCert(dir: string, rel: string, bytes?: Buffer): X509Certificate {
  try {
    return new X509Certificate(bytes ?? read(dir, rel));
  } catch (e) {
    if (e instanceof SecretsError) throw e;
    return fail(dir, rel, "not a readable PEM certificate", "restore it from your backup of the secrets directory");
  }
}

export function parseKey(dir: string, rel: string): KeyObject {
  try {
    return createPrivateKey(read(dir, rel));
  } catch (e) {
    if (e instanceof SecretsError) throw e;
    return fail(dir, rel, "not a readable PEM private key", "restore it from your backup of the secrets directory");
  }
}

/**
 * Pairs checked before, by the SHA-256 of the CA certificate's, the certificate's and the key's
 * bytes together: a warm build of 500 clients spent a fifth of its time parsing private keys it had
 * checked on the previous run. Any changed byte gives another digest and the full check. Kept in
 * .verified (0600) by builds; it is a cache: lost or stale, nothing but time is lost.
 */
export class VerifiedPairs {
  static readonly FILE = ".verified";
  private readonly known: Set<string>;
  private readonly added = new Set<string>();

  constructor(private readonly dir: string) {
    const file = join(dir, VerifiedPairs.FILE);
    let text = "";
    try {
      text = readSafely(file, { maxBytes: MAX_SECRET_FILE_BYTES, check: ownedPrivately }).toString("utf8");
    } catch {
      // no cache yet, or not one to trust: a cache lost is only time
    }
    this.known = new Set(text.split("\n").filter((l) => /^[0-9a-f]{64}$/.test(l)));
  }

  static digest(...parts: Buffer[]): string {
    const h = createHash("sha256");
    for (const p of parts) h.update(createHash("sha256").update(p).digest());
    return h.digest("hex");
  }

  has(digest: string) {
    return this.known.has(digest);
  }

  add(digest: string) {
    if (!this.known.has(digest)) this.added.add(digest);
  }

  /** Writes the cache when this run checked something new (callers hold the lock). */
  save() {
    if (!this.added.size) return;
    try {
      writeSecretFile(this.dir, VerifiedPairs.FILE, [...new Set([...this.known, ...this.added])].sort().join("\n") + "\n");
    } catch (e) {
      // A read-only secrets directory builds as before: the cache is only time saved next run.
      if (!["EROFS", "EACCES", "EPERM", "ENOSPC", "EDQUOT"].includes((e as NodeJS.ErrnoException).code ?? "")) throw e;
    }
  }
}

/** Loads a key pair and checks that key and certificate belong together and that `ca` signed it. */
export function loadPair(dir: string, certRel: string, keyRel: string, ca?: X509Certificate, verified?: VerifiedPairs): { pair: KeyPair; cert: X509Certificate } {
  const certBytes = readChecked(dir, certRel);
  const keyBytes = readChecked(dir, keyRel);
  const cert = parseCert(dir, certRel, certBytes);
  const digest = VerifiedPairs.digest(ca?.raw ?? Buffer.alloc(0), certBytes, keyBytes);
  if (!verified?.has(digest)) {
    const key = parseKey(dir, keyRel);
    if (!cert.checkPrivateKey(key)) {
      // A CA pair cannot be re-issued: every other certificate hangs on this key.
      const ca = certRel === paths.caCert || certRel === paths.caNextCert;
      const name = certRel.startsWith("clients/") ? certRel.slice("clients/".length, -"-cert.pem".length) : "server";
      fail(
        dir,
        keyRel,
        `this key does not belong to ${certRel}`,
        ca
          ? `restore ${certRel.split("/")[0]}/ (certificate and key together) from your backup; nothing can be re-issued without the CA's own key`
          : `restore the matching pair from your backup, or issue a new pair: f3s-gen pki renew <spec> ${name}`,
      );
    }
    const signer = ca ?? cert;
    if (!cert.verify(signer.publicKey) || (ca && cert.issuer !== ca.subject) || (ca && !cert.checkIssued(ca))) {
      fail(dir, certRel, ca ? "this certificate was not issued by the CA in ca/ca-cert.pem" : "the CA certificate is not self-signed", "restore the secrets directory from your backup; mixing files from two secrets directories does not work");
    }
    verified?.add(digest);
  }
  return { pair: { certPem: certBytes.toString("utf8"), keyPem: keyBytes.toString("utf8") }, cert };
}

export function readIndex(dir: string): SecretsIndex {
  const text = read(dir, paths.index);
  try {
    const index = JSON.parse(text) as SecretsIndex;
    if (index.format !== 1 || !Array.isArray(index.clients) || !Array.isArray(index.zfsKeys) || !Array.isArray(index.retired)) throw new Error();
    // Names become file names in this directory: nothing that could reach outside it.
    const safe = (n: unknown) => typeof n === "string" && /^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(n) && !n.includes("..");
    if (![...index.clients, ...index.zfsKeys, ...index.retired.map((r) => r?.name)].every(safe)) throw new Error();
    const r = index.rotation;
    if (r !== undefined) {
      if (r.stage !== "trust" && r.stage !== "reissue") throw new Error();
      if (!(r.previousClients ?? []).every((c) => safe(c?.name) && typeof c.serial === "string" && /^[0-9a-f]+$/.test(c.serial))) throw new Error();
    }
    return index;
  } catch {
    return fail(dir, paths.index, "index.json is not a valid f3s-gen secrets index", "restore it from your backup of the secrets directory");
  }
}

/**
 * The directory, and every file and directory in it, private to the user running f3s-gen: a
 * readable key inside a 0700 directory is still one `chmod` of the parent away from everyone, and a
 * directory owned by someone else can be changed under us by that user.
 */
export function checkPermissions(dir: string, out: Diagnostic[]) {
  const uid = process.getuid?.();
  const problems: { file: string; message: string; hint: string }[] = [];
  const walk = (p: string, depth: number) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return; // refused where it is read, with a better message than its mode
    // The rule every secrets file is read with (ownedPrivately), applied to the whole tree up front.
    const why = ownedPrivately(st);
    if (why) {
      const hint = why.startsWith("owned by") ? `run f3s-gen as the directory's owner, or: chown -R ${uid} ${dir}` : `run: chmod -R go= ${dir}`;
      problems.push({ file: p, message: `${p === dir ? "the secrets directory" : "a secrets file"} is ${why}`, hint });
    }
    if (st.isDirectory() && depth < 4) for (const n of readdirSync(p)) walk(join(p, n), depth + 1);
  };
  walk(dir, 0);
  // One finding per kind is enough to act on; the count says how far it goes.
  for (const kind of ["owned by", "accessible"]) {
    const hits = problems.filter((x) => x.message.includes(kind));
    if (!hits.length) continue;
    const more = hits.length > 1 ? ` (and ${hits.length - 1} more)` : "";
    out.push({ ...error("secrets.permissions", "", hits[0]!.message + more, hits[0]!.hint), location: { file: hits[0]!.file, line: 1, col: 1 } });
  }
}

/**
 * Every directory above the secrets: whoever can write one of them can rename the secrets
 * directory away and put another in its place between two of our steps (OpenSSH's StrictModes
 * asks the same of ~/.ssh). Owned by root or the user, and not writable by others unless sticky
 * (/tmp: others cannot rename what is ours in it).
 */
export function checkAncestors(dir: string, out: Diagnostic[]) {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  for (let p = dirname(dir); ; p = dirname(p)) {
    const st = lstatSync(p);
    const sticky = (st.mode & 0o1000) !== 0;
    if (st.uid !== 0 && st.uid !== uid) {
      out.push({ ...error("secrets.permissions", "", `a directory above the secrets is owned by uid ${st.uid}, who could replace the secrets directory`, `keep the secrets under directories owned by root or by you (uid ${uid})`), location: { file: p, line: 1, col: 1 } });
      return;
    }
    if (st.mode & 0o022 && !sticky) {
      out.push({ ...error("secrets.permissions", "", `a directory above the secrets can be written by other users (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")}): they could replace the secrets directory`, `run: chmod go-w ${p}`), location: { file: p, line: 1, col: 1 } });
      return;
    }
    if (dirname(p) === p) return;
  }
}

/**
 * What every command that reads or writes the secrets checks first, before it reads a file or
 * applies a journal: the directory is one, its owner and modes and those of everything in it
 * are private, the directories above cannot be swapped by others. Then a change an interrupted
 * run committed is finished (`write`: callers holding the lock) or refused (read-only commands).
 */
export function prepareStore(dir: string, write: boolean, changes: string[]) {
  const st = lstatSync(dir);
  if (!st.isDirectory()) fail(dir, "", "the secrets directory is not a directory", "pass --secrets DIR with the directory itself");
  const found: Diagnostic[] = [];
  checkAncestors(dir, found);
  checkPermissions(dir, found);
  throwIfErrors(found);
  if (write) recoverIfPending(dir, changes);
  else refusePending(dir);
}

/** Staging directories of interrupted first builds hold private keys: remove them. */
export function removeStaleStaging(dir: string) {
  const parent = dirname(dir);
  if (!existsSync(parent)) return;
  const prefix = `${dir.slice(parent.length + 1)}.tmp-`;
  for (const n of readdirSync(parent)) if (n.startsWith(prefix)) rmSync(join(parent, n), { recursive: true, force: true });
}

/** Under the lock: a change an interrupted run committed is finished first, one it did not is dropped. */
export function recoverIfPending(dir: string, changes: string[]) {
  try {
    const done = recoverSecrets(dir);
    if (done) changes.push(done);
  } catch (e) {
    if (e instanceof SecretsJournalError) throw new SecretsError(e.diagnostic);
    throw e;
  }
}

export function refusePending(dir: string) {
  const journal = pendingJournal(dir);
  if (journal) fail(dir, `${journal.slice(dir.length + 1)}`, "a secrets change was interrupted after it was committed and is not finished yet", "run f3s-gen build (or any pki command): it finishes the change first");
}

export const indexText = (index: SecretsIndex) => JSON.stringify(index, null, 2) + "\n";

/** The record of a certificate about to be retired (its file must exist). */
export function retiredRecord(dir: string, target: CertTarget, reason: RetiredCert["reason"], now: Date): RetiredCert {
  const cert = parseCert(dir, paths.pair(target)[0]);
  return { name: targetName(target), kind: target.kind, serial: cert.serialNumber.toLowerCase(), sha256: cert.fingerprint256, reason, at: now.toISOString() };
}

/**
 * Adds to `txn` the moves that set a certificate and its key aside (never deleted), into a
 * directory named by kind and serial: retired/client-<name>-<serial>, retired/server-<serial>,
 * retired/ca-<serial>.
 */
export function retireInto(txn: Transaction, dir: string, target: CertTarget, record: RetiredCert) {
  const dest = `retired/${target.kind === "client" ? `client-${target.name}` : target.kind}-${record.serial}`;
  for (const rel of paths.pair(target)) if (existsSync(join(dir, rel))) txn.move(rel, `${dest}/${rel.split("/").pop()}`);
}

