// The secrets directory (like a Talos secrets bundle): CA, server and client keys and certificates,
// ZFS raw keys. Created atomically on the first build and reused forever after. A missing, corrupted
// or mismatched file is an error that names the file; nothing is ever regenerated silently.
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { error, warning, type Diagnostic } from "../diag/diagnostic.js";
import type { Model } from "../spec/model.js";
import { issueCa, issueLeaf, type Subject } from "./certs.js";
import { algorithmOf, describeAlgorithm, generateKeys, generateZfsKey, type GeneratedKey } from "./keys.js";
import { SecretsTransaction } from "./transaction.js";
import { EXPIRY_WARNING_DAYS } from "./expiry.js";
import {
  SecretsError, VerifiedPairs, fail, indexText, loadPair, paths, prepareStore, readChecked, readIndex, removeStaleStaging, throwIfErrors, retiredRecord, retireInto, writeSecretFile,
  type CertTarget, type KeyPair, type SecretsIndex,
} from "./store.js";

export type { KeyPair } from "./store.js";

export interface Secrets {
  /** The CA that signs now. */
  ca: KeyPair;
  server: KeyPair;
  clients: Map<string, KeyPair>;
  zfsKeys: Map<string, Buffer>;
  /** Every CA certificate hosts trust: the current one, and during a rotation the next or the previous. */
  trust: string[];
  /**
   * During a CA rotation, client certificates the storage nodes accept besides the current ones:
   * the next (stage "trust"), or the previous (stage "reissue"), by client: each client's stunnel
   * service accepts only its own.
   */
  alsoAllowed: Map<string, string[]>;
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

function sanNames(cert: X509Certificate): { dns: string[]; ip: string[] } {
  const parts = (cert.subjectAltName ?? "").split(/,\s*/).filter(Boolean);
  return {
    dns: parts.filter((p) => p.startsWith("DNS:")).map((p) => p.slice(4)).sort(),
    ip: parts.filter((p) => p.startsWith("IP Address:")).map((p) => p.slice(11)).sort(),
  };
}

const sameList = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);

/** Days left before `cert` expires, rounded down. */
export function daysLeft(cert: X509Certificate, now: Date): number {
  return Math.floor((new Date(cert.validTo).getTime() - now.getTime()) / 86400_000);
}

export { EXPIRY_WARNING_DAYS };

const nothingToCommit = () => {};

export async function openSecrets(dir: string, model: Model, opts: OpenOptions): Promise<OpenResult> {
  try {
    if (!existsSync(dir)) return await createSecrets(dir, model, opts);
    return await reuseSecrets(dir, model, opts);
  } catch (e) {
    if (e instanceof SecretsError) return { diagnostics: e.diagnostics, changes: [], commit: nothingToCommit };
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
  return { secrets: { ca, server, clients, zfsKeys, trust: [ca.certPem], alsoAllowed: new Map() }, diagnostics: [], changes, commit, fresh: [ca.certPem, server.certPem, ...[...clients.values()].map((p) => p.certPem)], lineage };
}

/**
 * What a CA rotation in progress adds: the other CA hosts trust (ca-next/ in stage "trust", ca-prev/
 * in "reissue"), and the other certificates of the clients still in the spec the storage nodes
 * accept (their next ones in "trust", their previous ones in "reissue").
 */
function loadRotation(dir: string, index: SecretsIndex, model: Model, verified: VerifiedPairs): { trust: string[]; alsoAllowed: Map<string, string[]>; next?: X509Certificate } {
  const r = index.rotation;
  if (!r) return { trust: [], alsoAllowed: new Map() };
  const clients = model.clients.map((c) => c.name).filter((name) => index.clients.includes(name));
  if (r.stage === "trust") {
    const next = loadPair(dir, paths.caNextCert, paths.caNextKey, undefined, verified);
    if (!next.cert.ca) fail(dir, paths.caNextCert, "the next CA's certificate is not a CA", "restore ca-next/ from your backup");
    const nextPair = (rel: [string, string]) => loadPair(dir, paths.next(rel[0]), paths.next(rel[1]), next.cert, verified);
    nextPair(paths.pair({ kind: "server" }));
    // A client added during this stage has no next certificate: it gets one from the new CA in stage 2.
    const alsoAllowed = new Map(clients.filter((name) => existsSync(join(dir, paths.next(paths.clientCert(name))))).map((name) => [name, [nextPair(paths.pair({ kind: "client", name })).pair.certPem]]));
    return { trust: [next.pair.certPem], alsoAllowed, next: next.cert };
  }
  const prev = readChecked(dir, paths.caPrevCert);
  let prevCert: X509Certificate;
  try {
    prevCert = new X509Certificate(prev);
  } catch {
    return fail(dir, paths.caPrevCert, "not a readable PEM certificate", "restore ca-prev/ from your backup");
  }
  if (!prevCert.ca || !prevCert.verify(prevCert.publicKey)) fail(dir, paths.caPrevCert, "the previous CA's certificate is not a self-signed CA", "restore ca-prev/ from your backup");
  const alsoAllowed = new Map<string, string[]>();
  for (const c of (r.previousClients ?? []).filter((c) => clients.includes(c.name))) alsoAllowed.set(c.name, [...(alsoAllowed.get(c.name) ?? []), readChecked(dir, paths.retiredClientCert(c.name, c.serial)).toString("utf8")]);
  return { trust: [prev.toString("utf8")], alsoAllowed };
}

/** Says where a CA rotation stands and what comes next, on every build while it lasts. */
function rotationNote(r: NonNullable<SecretsIndex["rotation"]>, spec: string): Diagnostic {
  const stage = r.stage === "trust" ? "1 of 3 (every host trusts the current and the next CA)" : "2 of 3 (every host presents its certificate from the new CA; the old CA and certificates still accepted)";
  return warning("pki-rotation", "/pki", `a CA rotation is in progress: stage ${stage}`, `deploy this build to every host, then: f3s-gen pki rotate-ca ${spec}`);
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
  return [warning("pki-drift", "/pki", `the spec's pki settings differ from the existing CA (${drift.join(", ")}); they apply only to a new CA`, `to apply them: f3s-gen pki rotate-ca ${specName} (re-issues every certificate; docs/pki.md: Rolling the CA)`)];
}

async function reuseSecrets(dir: string, model: Model, opts: OpenOptions): Promise<OpenResult> {
  const diagnostics: Diagnostic[] = [];
  const changes: string[] = [];
  const spec = opts.specName ?? "<spec>";
  prepareStore(dir, opts.recover === true, changes);
  const index = readIndex(dir);
  if (index.cluster && index.cluster.domain !== model.domain) {
    fail(
      dir,
      paths.index,
      `this secrets directory belongs to the cluster ${index.cluster.domain} (CA "${index.cluster.ca}"), not to ${model.domain}`,
      `for a new cluster, give it its own: f3s-gen build ${spec} --secrets <new directory>. Moving an existing cluster to a new domain renames its ZFS key files (<fqdn>:<key>.key): see docs/pki.md, Secrets`,
    );
  }

  const verified = new VerifiedPairs(dir);
  const ca = loadPair(dir, paths.caCert, paths.caKey, undefined, verified);
  const rotation = loadRotation(dir, index, model, verified);
  if (!ca.cert.ca) fail(dir, paths.caCert, "this certificate is not a CA (basicConstraints CA:FALSE)", "restore ca/ca-cert.pem from your backup");
  if (daysLeft(ca.cert, opts.now) < 0) fail(dir, paths.caCert, `the CA expired on ${ca.cert.validTo}`, "roll the CA: see 'Rolling the CA' in docs/pki.md");

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
      // A lost certificate or key (or both) is fixed by a new pair: renew says how.
      const lost = [paths.clientCert(c.name), paths.clientKey(c.name)].filter((rel) => !existsSync(join(dir, rel)));
      if (lost.length) {
        mismatched.push(c.name);
        fail(dir, lost[0]!, `the ${lost.length === 2 ? "certificate and key" : lost[0]!.endsWith("-cert.pem") ? "certificate" : "key"} of client ${c.name} ${lost.length === 2 ? "were" : "was"} issued but ${lost.length === 2 ? "are" : "is"} missing`, `restore from your backup, or issue a new pair: f3s-gen pki renew ${spec} ${c.name} --secrets ${dir}`);
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
  // During a rotation the spec's settings apply to the next CA.
  diagnostics.push(...pkiDrift(model, rotation.next ?? ca.cert, spec));
  throwIfErrors(diagnostics);

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
    const hint = name === "CA" ? "roll the CA: `f3s-gen pki rotate-ca <spec>` (docs/pki.md)" : `run \`f3s-gen pki renew <spec> ${name}\``;
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
    try {
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
    } finally {
      txn.abort(); // a write that failed (ENOSPC) leaves no staged key behind; after the commit point, nothing
    }
  };
  const lineage = [ca.cert.fingerprint256, ...rotation.trust.map((pem) => new X509Certificate(pem).fingerprint256), ...index.retired.filter((r) => r.kind === "ca" || r.name === "CA").map((r) => r.sha256)];
  if (index.rotation) diagnostics.push(rotationNote(index.rotation, spec));
  const secrets = { ca: ca.pair, server: server.pair, clients, zfsKeys, trust: [ca.pair.certPem, ...rotation.trust], alsoAllowed: rotation.alsoAllowed };
  return { secrets, diagnostics, changes, commit, fresh: [...issued.values()].map((p) => p.certPem), lineage };
}
