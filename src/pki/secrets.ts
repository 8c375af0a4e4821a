// The secrets directory (like a Talos secrets bundle): CA, server and client keys and certificates,
// ZFS raw keys. Created atomically on the first build and reused forever after. A missing, corrupted
// or mismatched file is an error that names the file; nothing is ever regenerated silently.
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { error, warning, type Diagnostic } from "../diag/diagnostic.js";
import type { Model } from "../spec/model.js";
import { issueCa, issueLeaf, type Subject } from "./certs.js";
import { algorithmOf, describeAlgorithm, generateKeys, generateZfsKey, type GeneratedKey } from "./keys.js";
import { SecretsTransaction, pendingJournal, recoverSecrets } from "./transaction.js";

/** Which certificate and key: by kind, so that a client's name can never select the server's or the CA's files. */
export type CertTarget = { kind: "ca" } | { kind: "server" } | { kind: "client"; name: string };
export const targetName = (t: CertTarget) => (t.kind === "ca" ? "CA" : t.kind === "server" ? "server" : t.name);

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface Secrets {
  ca: KeyPair;
  server: KeyPair;
  clients: Map<string, KeyPair>;
  zfsKeys: Map<string, Buffer>;
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
export interface SecretsIndex {
  format: 1;
  /** The cluster these secrets belong to (absent in directories made before it was recorded). */
  cluster?: { domain: string; ca: string };
  clients: string[];
  zfsKeys: string[];
  retired: RetiredCert[];
}

export interface OpenOptions {
  now: Date;
  /** The spec as the user named it, for hints with commands that run as written. */
  specName?: string;
  onProgress?: (done: number, total: number) => void;
  /**
   * Finish (or drop) a secrets change an interrupted run left: only for callers holding the lock
   * (build). Without it, a pending change is an error that says which command finishes it.
   */
  recover?: boolean;
}

export interface OpenResult {
  /** The secrets a build uses, including anything newly issued (in memory until commit). */
  secrets?: Secrets;
  diagnostics: Diagnostic[];
  /** Human-readable list of what is issued, retired or created by this run. */
  changes: string[];
  /** Certificates issued by this run (in memory until commit): their serials are not final in a plan. */
  fresh?: string[];
  /**
   * SHA-256 fingerprints of this cluster's CA and of every CA it replaced (rotate-ca): out/ built
   * from any of them belongs to the same cluster.
   */
  lineage?: string[];
  /**
   * Persists what this run issued or retired. Everything expensive happens before (in memory), so
   * a build calls this only right before it replaces out/: a run killed earlier changes nothing.
   */
  commit: () => void;
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
  /** [certificate, key] of a target. */
  pair: (t: CertTarget): [string, string] =>
    t.kind === "ca" ? [paths.caCert, paths.caKey] : t.kind === "server" ? [paths.serverCert, paths.serverKey] : [paths.clientCert(t.name), paths.clientKey(t.name)],
};

class SecretsError extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

const fail = (dir: string, file: string, message: string, hint: string): never => {
  throw new SecretsError({ ...error("secrets", "", message, hint), location: { file: join(dir, file), line: 1, col: 1 } });
};

export function subjectFor(model: Model, commonName: string): Subject {
  const { country, state, locality, organization } = model.pki;
  return { country, state, locality, organization, commonName };
}

export function serverProfile(model: Model) {
  return { kind: "server" as const, subject: subjectFor(model, model.vip.fqdn), dnsNames: model.vip.names, ipAddresses: [model.vip.address] };
}

export function clientProfile(model: Model, name: string) {
  const fqdn = `${name}.${model.domain}`;
  return { kind: "client" as const, subject: subjectFor(model, fqdn), dnsNames: [fqdn], ipAddresses: [] };
}

/** Writes a file by rename, so that a reader never sees half of it. Secrets are 0600. */
export function writeSecretFile(dir: string, rel: string, data: string | Buffer) {
  const target = join(dir, rel);
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  const tmp = `${target}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, target);
}

/** No secrets file is near this size; a larger one (or /dev/zero behind a link) is not read at all. */
export const MAX_SECRET_FILE_BYTES = 1 << 20;

/** A secrets file, checked before it is read: a regular file (not a link, device or FIFO) of sane size. */
function readChecked(dir: string, rel: string): Buffer {
  const file = join(dir, rel);
  if (!existsSync(file)) fail(dir, rel, "missing secrets file", "restore it from your backup of the secrets directory; f3s-gen never regenerates secrets silently");
  const st = lstatSync(file);
  if (!st.isFile()) fail(dir, rel, `not a regular file (${st.isSymbolicLink() ? "a symbolic link" : "a device, FIFO or directory"})`, "secrets are plain files inside the secrets directory: restore it from your backup");
  if (st.size > MAX_SECRET_FILE_BYTES) fail(dir, rel, `${st.size} bytes is far more than any secrets file holds`, "restore it from your backup of the secrets directory");
  return readFileSync(file);
}

function read(dir: string, rel: string): string {
  return readChecked(dir, rel).toString("utf8");
}

function parseCert(dir: string, rel: string, bytes?: Buffer): X509Certificate {
  try {
    return new X509Certificate(bytes ?? read(dir, rel));
  } catch (e) {
    if (e instanceof SecretsError) throw e;
    return fail(dir, rel, "not a readable PEM certificate", "restore it from your backup of the secrets directory");
  }
}

function parseKey(dir: string, rel: string): KeyObject {
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
      const st = lstatSync(file);
      if (st.isFile() && st.size <= MAX_SECRET_FILE_BYTES) text = readFileSync(file, "utf8");
    } catch {
      // no cache yet
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
    writeSecretFile(this.dir, VerifiedPairs.FILE, [...new Set([...this.known, ...this.added])].sort().join("\n") + "\n");
  }
}

/** Loads a key pair and checks that key and certificate belong together and that `ca` signed it. */
function loadPair(dir: string, certRel: string, keyRel: string, ca?: X509Certificate, verified?: VerifiedPairs): { pair: KeyPair; cert: X509Certificate } {
  const certBytes = readChecked(dir, certRel);
  const keyBytes = readChecked(dir, keyRel);
  const cert = parseCert(dir, certRel, certBytes);
  const digest = VerifiedPairs.digest(ca?.raw ?? Buffer.alloc(0), certBytes, keyBytes);
  if (!verified?.has(digest)) {
    const key = parseKey(dir, keyRel);
    if (!cert.checkPrivateKey(key)) fail(dir, keyRel, `this key does not belong to ${certRel}`, "restore the matching pair from your backup, or re-issue it with `f3s-gen pki renew`");
    const signer = ca ?? cert;
    if (!cert.verify(signer.publicKey) || (ca && cert.issuer !== ca.subject) || (ca && !cert.checkIssued(ca))) {
      fail(dir, certRel, ca ? "this certificate was not issued by the CA in ca/ca-cert.pem" : "the CA certificate is not self-signed", "restore the secrets directory from your backup; mixing files from two secrets directories does not work");
    }
    verified?.add(digest);
  }
  return { pair: { certPem: certBytes.toString("utf8"), keyPem: keyBytes.toString("utf8") }, cert };
}

function sanNames(cert: X509Certificate): { dns: string[]; ip: string[] } {
  const parts = (cert.subjectAltName ?? "").split(/,\s*/).filter(Boolean);
  return {
    dns: parts.filter((p) => p.startsWith("DNS:")).map((p) => p.slice(4)).sort(),
    ip: parts.filter((p) => p.startsWith("IP Address:")).map((p) => p.slice(11)).sort(),
  };
}

const sameList = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);

function readIndex(dir: string): SecretsIndex {
  const text = read(dir, paths.index);
  try {
    const index = JSON.parse(text) as SecretsIndex;
    if (index.format !== 1 || !Array.isArray(index.clients) || !Array.isArray(index.zfsKeys) || !Array.isArray(index.retired)) throw new Error();
    // Names become file names in this directory: nothing that could reach outside it.
    const safe = (n: unknown) => typeof n === "string" && /^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(n) && !n.includes("..");
    if (![...index.clients, ...index.zfsKeys, ...index.retired.map((r) => r?.name)].every(safe)) throw new Error();
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
function checkPermissions(dir: string, out: Diagnostic[]) {
  const uid = process.getuid?.();
  const problems: { file: string; message: string; hint: string }[] = [];
  const walk = (p: string, depth: number) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return; // refused where it is read, with a better message than its mode
    const mode = st.mode & 0o777;
    if (uid !== undefined && st.uid !== uid) problems.push({ file: p, message: `owned by uid ${st.uid}, not by the user running f3s-gen (uid ${uid})`, hint: `run f3s-gen as the directory's owner, or: chown -R ${uid} ${dir}` });
    else if (mode & 0o077) problems.push({ file: p, message: `${p === dir ? "the secrets directory" : "a secrets file"} is accessible to other users (mode ${mode.toString(8).padStart(4, "0")})`, hint: `run: chmod -R go= ${dir}` });
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

/** Days left before `cert` expires, rounded down. */
export function daysLeft(cert: X509Certificate, now: Date): number {
  return Math.floor((new Date(cert.validTo).getTime() - now.getTime()) / 86400_000);
}

export const EXPIRY_WARNING_DAYS = 30;

const nothingToCommit = () => {};

/** Staging directories of interrupted first builds hold private keys: remove them. */
function removeStaleStaging(dir: string) {
  const parent = dirname(dir);
  if (!existsSync(parent)) return;
  const prefix = `${dir.slice(parent.length + 1)}.tmp-`;
  for (const n of readdirSync(parent)) if (n.startsWith(prefix)) rmSync(join(parent, n), { recursive: true, force: true });
}

export async function openSecrets(dir: string, model: Model, opts: OpenOptions): Promise<OpenResult> {
  try {
    if (!existsSync(dir)) return await createSecrets(dir, model, opts);
    return await reuseSecrets(dir, model, opts);
  } catch (e) {
    if (e instanceof SecretsError) return { diagnostics: [e.diagnostic], changes: [], commit: nothingToCommit };
    if (e instanceof CollectedErrors) return { diagnostics: e.diagnostics, changes: [], commit: nothingToCommit };
    throw e;
  }
}

async function createSecrets(dir: string, model: Model, opts: OpenOptions): Promise<OpenResult> {
  const changes = [`create the secrets directory ${dir}: CA, server certificate, ${model.clients.length} client certificate(s), ${model.zfsKeys.length} ZFS key(s)`];
  const keys = await generateKeys(2 + model.clients.length, model.pki.key, opts.onProgress);
  const [caKey, serverKey, ...clientKeys] = keys as [GeneratedKey, GeneratedKey, ...GeneratedKey[]];
  const issueOpts = { now: opts.now, validityDays: model.pki.validityDays };
  const ca = { certPem: await issueCa(caKey, subjectFor(model, model.pki.caCommonName), issueOpts), keyPem: caKey.privatePem };
  const server = { certPem: await issueLeaf(serverKey, serverProfile(model), ca, issueOpts), keyPem: serverKey.privatePem };
  const clients = new Map<string, KeyPair>();
  for (const [i, c] of model.clients.entries()) clients.set(c.name, { certPem: await issueLeaf(clientKeys[i]!, clientProfile(model, c.name), ca, issueOpts), keyPem: clientKeys[i]!.privatePem });
  const zfsKeys = new Map(model.zfsKeys.map((k) => [k.fileName, generateZfsKey()] as const));
  const commit = () => {
    // Made in a sibling directory and renamed into place: never a half-made secrets directory.
    removeStaleStaging(dir);
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(tmp, { recursive: true, mode: 0o700 });
    try {
      writeSecretFile(tmp, paths.caKey, ca.keyPem);
      writeSecretFile(tmp, paths.caCert, ca.certPem);
      writeSecretFile(tmp, paths.serverKey, server.keyPem);
      writeSecretFile(tmp, paths.serverCert, server.certPem);
      for (const [name, pair] of clients) {
        writeSecretFile(tmp, paths.clientKey(name), pair.keyPem);
        writeSecretFile(tmp, paths.clientCert(name), pair.certPem);
      }
      for (const [name, key] of zfsKeys) writeSecretFile(tmp, paths.zfsKey(name), key);
      const index: SecretsIndex = { format: 1, cluster: clusterOf(model), clients: [...clients.keys()].sort(), zfsKeys: [...zfsKeys.keys()].sort(), retired: [] };
      writeSecretFile(tmp, paths.index, JSON.stringify(index, null, 2) + "\n");
      // Everything here was just made and is known to belong together.
      const caDer = new X509Certificate(ca.certPem).raw;
      const digests = [VerifiedPairs.digest(Buffer.alloc(0), Buffer.from(ca.certPem), Buffer.from(ca.keyPem))];
      for (const p of [server, ...clients.values()]) digests.push(VerifiedPairs.digest(caDer, Buffer.from(p.certPem), Buffer.from(p.keyPem)));
      writeSecretFile(tmp, VerifiedPairs.FILE, digests.sort().join("\n") + "\n");
      mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
      renameSync(tmp, dir);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  };
  const lineage = [new X509Certificate(ca.certPem).fingerprint256];
  return { secrets: { ca, server, clients, zfsKeys }, diagnostics: [], changes, commit, fresh: [ca.certPem, server.certPem, ...[...clients.values()].map((p) => p.certPem)], lineage };
}

const clusterOf = (model: Model) => ({ domain: model.domain, ca: model.pki.caCommonName });

/** Runs `check`; a SecretsError it throws becomes one more diagnostic, so every mismatch is reported at once. */
function collect(out: Diagnostic[], check: () => void) {
  try {
    check();
  } catch (e) {
    if (!(e instanceof SecretsError)) throw e;
    out.push(e.diagnostic);
  }
}

/** pki settings that only a new CA can change: said as a warning, never applied silently. */
function pkiDrift(model: Model, ca: X509Certificate, specName: string): Diagnostic[] {
  const want = subjectFor(model, model.pki.caCommonName);
  const fields: [string, string | undefined][] = [["CN", want.commonName], ["O", want.organization], ["C", want.country], ["ST", want.state], ["L", want.locality]];
  const have = new Map(ca.subject.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const));
  const drift = fields.filter(([k, v]) => (have.get(k) ?? undefined) !== (v ?? undefined)).map(([k, v]) => `${k} ${JSON.stringify(have.get(k) ?? "")} -> ${JSON.stringify(v ?? "")}`);
  const caKey = algorithmOf(ca.publicKey);
  if (caKey && describeAlgorithm(caKey) !== describeAlgorithm(model.pki.key)) drift.push(`key ${describeAlgorithm(caKey)} -> ${describeAlgorithm(model.pki.key)}`);
  const validity = Math.round((new Date(ca.validTo).getTime() - new Date(ca.validFrom).getTime()) / 86400_000);
  if (validity !== model.pki.validityDays) drift.push(`validity ${validity} -> ${model.pki.validityDays} days`);
  if (!drift.length) return [];
  return [warning("pki-drift", "/pki", `the spec's pki settings differ from the existing CA (${drift.join(", ")}); they apply only to a new CA`, `to apply them: f3s-gen pki rotate-ca ${specName} (re-issues every certificate; README: Rolling the CA)`)];
}

/** Under the lock: a change an interrupted run committed is finished first, one it did not is dropped. */
export function recoverIfPending(dir: string, changes: string[]) {
  const done = recoverSecrets(dir);
  if (done) changes.push(done);
}

function refusePending(dir: string) {
  const journal = pendingJournal(dir);
  if (journal) fail(dir, `${journal.slice(dir.length + 1)}`, "a secrets change was interrupted after it was committed and is not finished yet", "run f3s-gen build (or any pki command): it finishes the change first");
}

async function reuseSecrets(dir: string, model: Model, opts: OpenOptions): Promise<OpenResult> {
  const diagnostics: Diagnostic[] = [];
  const changes: string[] = [];
  const spec = opts.specName ?? "<spec>";
  if (opts.recover) recoverIfPending(dir, changes);
  else refusePending(dir);
  checkPermissions(dir, diagnostics);
  const index = readIndex(dir);
  if (index.cluster && index.cluster.domain !== model.domain) {
    fail(
      dir,
      paths.index,
      `this secrets directory belongs to the cluster ${index.cluster.domain} (CA "${index.cluster.ca}"), not to ${model.domain}`,
      `for a new cluster, give it its own: f3s-gen build ${spec} --secrets <new directory>. Moving an existing cluster to a new domain renames its ZFS key files (<fqdn>:<key>.key): see README, Secrets`,
    );
  }

  const verified = new VerifiedPairs(dir);
  const ca = loadPair(dir, paths.caCert, paths.caKey, undefined, verified);
  if (!ca.cert.ca) fail(dir, paths.caCert, "this certificate is not a CA (basicConstraints CA:FALSE)", "restore ca/ca-cert.pem from your backup");
  if (daysLeft(ca.cert, opts.now) < 0) fail(dir, paths.caCert, `the CA expired on ${ca.cert.validTo}`, "roll the CA: see 'Rolling the CA' in the README");

  const mismatched: string[] = [];
  const server = loadPair(dir, paths.serverCert, paths.serverKey, ca.cert, verified);
  collect(diagnostics, () => {
    const want = serverProfile(model);
    const have = sanNames(server.cert);
    if (!sameList(have.dns, want.dnsNames) || !sameList(have.ip, want.ipAddresses)) {
      mismatched.push("server");
      fail(dir, paths.serverCert, `the server certificate names ${[...have.dns, ...have.ip].join(", ")} but the spec's VIP is ${[...want.dnsNames, ...want.ipAddresses].join(", ")}`, `re-issue it for the new names: f3s-gen pki renew ${spec} server --secrets ${dir}`);
    }
  });

  const clients = new Map<string, KeyPair>();
  const toIssue: string[] = [];
  const certs: [string, X509Certificate][] = [["CA", ca.cert], ["server", server.cert]];
  for (const c of model.clients) {
    const issued = index.clients.includes(c.name);
    if (!issued) {
      // Not in the index: a new client. Files under its name would be overwritten by the new pair,
      // and every change is a transaction, so they are not ours to replace.
      const found = [paths.clientCert(c.name), paths.clientKey(c.name)].filter((rel) => existsSync(join(dir, rel)));
      if (found.length) {
        collect(diagnostics, () =>
          fail(dir, found[0]!, `index.json does not list client ${c.name}, but ${found.join(" and ")} exist`, `restore index.json from your backup, or move ${found.join(" and ")} out of the secrets directory if they belong to nothing`),
        );
      }
      toIssue.push(c.name);
      continue;
    }
    collect(diagnostics, () => {
      if (!existsSync(join(dir, paths.clientCert(c.name))) && !existsSync(join(dir, paths.clientKey(c.name)))) {
        mismatched.push(c.name);
        fail(dir, paths.clientCert(c.name), `the certificate of client ${c.name} was issued but its files are missing`, `restore them from your backup, or issue a new pair: f3s-gen pki renew ${spec} ${c.name} --secrets ${dir}`);
      }
      const loaded = loadPair(dir, paths.clientCert(c.name), paths.clientKey(c.name), ca.cert, verified);
      if (!loaded.cert.subject.split("\n").includes(`CN=${c.fqdn}`)) {
        mismatched.push(c.name);
        fail(dir, paths.clientCert(c.name), `the certificate is for ${loaded.cert.subject.split("\n").find((l) => l.startsWith("CN=")) ?? "another name"}, not CN=${c.fqdn}`, `re-issue it: f3s-gen pki renew ${spec} ${c.name} --secrets ${dir}`);
      }
      clients.set(c.name, loaded.pair);
      certs.push([c.name, loaded.cert]);
    });
  }

  if (mismatched.length > 1) {
    diagnostics.push({ ...error("secrets", "", `${mismatched.length} certificates do not match the spec (${mismatched.join(", ")})`, `re-issue them all at once: f3s-gen pki renew ${spec} --all --secrets ${dir}`), location: { file: join(dir, paths.index), line: 1, col: 1 } });
  }
  diagnostics.push(...pkiDrift(model, ca.cert, spec));
  if (diagnostics.some((d) => d.severity === "error")) throw new CollectedErrors(diagnostics);

  const zfsKeys = new Map<string, Buffer>();
  const newKeys = new Map<string, Buffer>();
  for (const k of model.zfsKeys) {
    const rel = paths.zfsKey(k.fileName);
    if (!index.zfsKeys.includes(k.fileName)) {
      // A key file index.json does not list is never overwritten: it may encrypt data (an older
      // index restored from a backup would otherwise cost the key).
      if (existsSync(join(dir, rel))) fail(dir, rel, `index.json does not list this ZFS key, but the file exists`, `restore index.json from your backup; if the key really belongs to nothing, move ${rel} out of the secrets directory`);
      newKeys.set(k.fileName, generateZfsKey());
      continue;
    }
    if (!existsSync(join(dir, rel))) fail(dir, rel, "this ZFS key was generated but is missing", "restore it from your backup (or from the USB key): the data it encrypts cannot be read without it");
    const key = readChecked(dir, rel);
    if (key.length !== 32) fail(dir, rel, `a raw ZFS key has 32 bytes; this file has ${key.length}`, "restore it from your backup (or from the USB key)");
    zfsKeys.set(k.fileName, key);
  }

  for (const [name, cert] of certs) {
    const left = daysLeft(cert, opts.now);
    const hint = name === "CA" ? "roll the CA: `f3s-gen pki rotate-ca <spec>` (README)" : `run \`f3s-gen pki renew <spec> ${name}\``;
    // An expired leaf would be deployed and refused by the other end of the tunnel: an error, with the fix.
    if (left < 0) diagnostics.push({ ...error("cert-expired", "", `the ${name} certificate expired on ${cert.validTo}`, hint), location: { file: join(dir, name === "server" ? paths.serverCert : paths.clientCert(name)), line: 1, col: 1 } });
    else if (left < EXPIRY_WARNING_DAYS) diagnostics.push(warning("cert-expiring", "", `the ${name} certificate expires in ${left} day(s), on ${cert.validTo}`, hint));
  }

  const removed = index.clients.filter((n) => !model.clients.some((c) => c.name === n));
  for (const name of toIssue) changes.push(`issue a key and certificate for new client ${name}`);
  for (const name of newKeys.keys()) changes.push(`generate ZFS key ${name}`);
  for (const name of removed) changes.push(`retire client ${name} (no longer in the spec): its certificate is no longer accepted`);

  const issueOpts = { now: opts.now, validityDays: model.pki.validityDays };
  const keys = await generateKeys(toIssue.length, model.pki.key, opts.onProgress);
  const issued = new Map<string, KeyPair>();
  for (const [i, name] of toIssue.entries()) {
    issued.set(name, { certPem: await issueLeaf(keys[i]!, clientProfile(model, name), ca.pair, issueOpts), keyPem: keys[i]!.privatePem });
  }
  for (const [name, pair] of issued) clients.set(name, pair);
  for (const [name, key] of newKeys) zfsKeys.set(name, key);

  // What retiring the removed clients will move: planned now (their certificates read while they
  // are certainly there), applied in the transaction.
  // A removed client whose files are already gone has nothing left to move aside.
  const retiring = removed
    .filter((name) => existsSync(join(dir, paths.clientCert(name))))
    .map((name) => ({ target: { kind: "client", name } as CertTarget, record: retiredRecord(dir, { kind: "client", name }, "removed", opts.now) }));

  const commit = () => {
    verified.save();
    if (!issued.size && !newKeys.size && !removed.length && index.cluster) return;
    const txn = new SecretsTransaction(dir);
    for (const { target, record } of retiring) retireInto(txn, dir, target, record);
    for (const [name, pair] of issued) {
      txn.put(paths.clientKey(name), pair.keyPem);
      txn.put(paths.clientCert(name), pair.certPem);
    }
    for (const [name, key] of newKeys) txn.put(paths.zfsKey(name), key);
    index.cluster ??= clusterOf(model);
    index.retired.push(...retiring.map((r) => r.record));
    index.clients = [...new Set([...index.clients.filter((n) => !removed.includes(n)), ...issued.keys()])].sort();
    index.zfsKeys = [...new Set([...index.zfsKeys, ...newKeys.keys()])].sort();
    txn.commit(indexText(index));
  };
  const lineage = [ca.cert.fingerprint256, ...index.retired.filter((r) => r.kind === "ca" || r.name === "CA").map((r) => r.sha256)];
  return { secrets: { ca: ca.pair, server: server.pair, clients, zfsKeys }, diagnostics, changes, commit, fresh: [...issued.values()].map((p) => p.certPem), lineage };
}

export const indexText = (index: SecretsIndex) => JSON.stringify(index, null, 2) + "\n";

/** The record of a certificate about to be retired (its file must exist). */
export function retiredRecord(dir: string, target: CertTarget, reason: RetiredCert["reason"], now: Date): RetiredCert {
  const cert = new X509Certificate(readChecked(dir, paths.pair(target)[0]));
  return { name: targetName(target), kind: target.kind, serial: cert.serialNumber.toLowerCase(), sha256: cert.fingerprint256, reason, at: now.toISOString() };
}

/**
 * Adds to `txn` the moves that set a certificate and its key aside (never deleted), into a
 * directory named by kind and serial: retired/client-<name>-<serial>, retired/server-<serial>,
 * retired/ca-<serial>.
 */
export function retireInto(txn: SecretsTransaction, dir: string, target: CertTarget, record: RetiredCert) {
  const dest = `retired/${target.kind === "client" ? `client-${target.name}` : target.kind}-${record.serial}`;
  for (const rel of paths.pair(target)) if (existsSync(join(dir, rel))) txn.move(rel, `${dest}/${rel.split("/").pop()}`);
}

/** Several secrets diagnostics at once (every mismatch, not just the first). */
class CollectedErrors extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super("secrets do not match the spec");
  }
}

export { SecretsError, readIndex, loadPair, readChecked };


