// Day-2 PKI: status of every certificate, renewal of leaf certificates under the same CA, and
// revocation of a client whose key is compromised while it keeps its place in the spec.
import { X509Certificate } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { error, type Diagnostic } from "../diag/diagnostic.js";
import type { Model } from "../spec/model.js";
import { issueCa, issueLeaf } from "./certs.js";
import { generateKeys } from "./keys.js";
import { clientProfile, subjectFor, daysLeft, serverProfile, EXPIRY_WARNING_DAYS } from "./secrets.js";
import {
  loadPair, paths, prepareStore, readChecked, readIndex, retiredRecord, retireInto, indexText, targetName, SecretsError,
  type KeyPair, type RetiredCert, type SecretsIndex,
} from "./store.js";
import { PlannedTransaction, SecretsTransaction, type Transaction } from "./transaction.js";

export interface CertStatus {
  /** "CA", "server" or the client's name. */
  host: string;
  kind: "ca" | "server" | "client";
  commonName: string;
  notAfter: string;
  daysLeft: number;
  sha256: string;
  serial: string;
  /** Under EXPIRY_WARNING_DAYS, or expired. */
  expiring: boolean;
}

function status(host: string, kind: CertStatus["kind"], dir: string, rel: string, now: Date): CertStatus {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readChecked(dir, rel));
  } catch (e) {
    if (e instanceof SecretsError) throw e;
    throw new SecretsError({ ...error("secrets", "", "not a readable PEM certificate", "restore it from your backup of the secrets directory"), location: { file: join(dir, rel), line: 1, col: 1 } });
  }
  const left = daysLeft(cert, now);
  return {
    host,
    kind,
    commonName: cert.subject.split("\n").find((l) => l.startsWith("CN="))?.slice(3) ?? "",
    notAfter: new Date(cert.validTo).toISOString(),
    daysLeft: left,
    sha256: cert.fingerprint256,
    serial: cert.serialNumber.toLowerCase(),
    expiring: left < EXPIRY_WARNING_DAYS,
  };
}

/** Every current certificate in the secrets directory (no spec needed). */
export function pkiStatus(dir: string, now: Date): { certs: CertStatus[]; retired: RetiredCert[]; rotation: { stage: 1 | 2; of: 3 } | null } {
  if (!existsSync(join(dir, paths.index))) throw new SecretsError({ ...error("secrets", "", "not an f3s-gen secrets directory (no index.json)", "pass --secrets DIR, or run a build first"), location: { file: dir, line: 1, col: 1 } });
  prepareStore(dir, false, []);
  const index = readIndex(dir);
  const certs = [status("CA", "ca", dir, paths.caCert, now), status("server", "server", dir, paths.serverCert, now)];
  const clients = existsSync(join(dir, "clients")) ? readdirSync(join(dir, "clients")).filter((f) => f.endsWith("-cert.pem")).sort() : [];
  // A client the index says was issued but whose certificate is gone is an error, not a silence.
  for (const name of index.clients) {
    if (!clients.includes(`${name}-cert.pem`)) {
      throw new SecretsError({
        ...error("secrets.missing", "", `index.json records client ${name}, but ${paths.clientCert(name)} is missing`, `restore it from your backup, or issue a new pair: f3s-gen pki renew <spec> ${name}`),
        location: { file: join(dir, paths.clientCert(name)), line: 1, col: 1 },
      });
    }
  }
  for (const f of clients) certs.push(status(f.slice(0, -"-cert.pem".length), "client", dir, `clients/${f}`, now));
  if (index.rotation?.stage === "trust") certs.push(status("CA (next)", "ca", dir, paths.caNextCert, now));
  if (index.rotation?.stage === "reissue") certs.push(status("CA (previous)", "ca", dir, paths.caPrevCert, now));
  const rotation = index.rotation ? { stage: index.rotation.stage === "trust" ? (1 as const) : (2 as const), of: 3 as const } : null;
  return { certs, retired: index.retired, rotation };
}

export type ReissueTarget = { kind: "server" } | { kind: "client"; name: string };

/**
 * Adds to `txn` a new key and certificate for each target, issued by `ca`, with the current pair
 * (if its files exist) moved aside and recorded in `index` with the reason.
 */
export async function reissueInto(
  txn: Transaction, dir: string, model: Model, targets: ReissueTarget[], ca: KeyPair, index: SecretsIndex, reason: "renewed" | "revoked", now: Date, retired: RetiredCert[] = [],
): Promise<string[]> {
  const keys = await generateKeys(targets.length, model.pki.key);
  const changes: string[] = [];
  const issueOpts = { now, validityDays: model.pki.validityDays };
  for (const [i, t] of targets.entries()) {
    const name = targetName(t);
    const profile = t.kind === "server" ? serverProfile(model) : clientProfile(model, t.name);
    const cert = await issueLeaf(keys[i]!, profile, ca, issueOpts);
    const [certRel, keyRel] = paths.pair(t);
    // A pair whose files are lost (the index still records it) is simply issued again.
    const record = existsSync(join(dir, certRel)) ? retiredRecord(dir, t, reason, now) : undefined;
    if (record) {
      retireInto(txn, dir, t, record); // moved aside before the new pair takes its place
      index.retired.push(record);
      retired.push(record);
    }
    txn.put(keyRel, keys[i]!.privatePem);
    txn.put(certRel, cert);
    if (t.kind === "client" && !index.clients.includes(t.name)) index.clients = [...index.clients, t.name].sort();
    changes.push(record ? `${reason} ${name}: old certificate ${record.serial} moved to retired/, new key and certificate issued` : `${reason} ${name}: its files were missing; new key and certificate issued`);
  }
  return changes;
}

/**
 * Moves the current pair aside (recorded in index.json with the reason) and issues a new key and
 * certificate under the same CA, in one transaction. Nothing else changes.
 */
export async function reissue(dir: string, model: Model, targets: ReissueTarget[], reason: "renewed" | "revoked", now: Date, dryRun = false): Promise<{ changes: string[]; diagnostics: Diagnostic[] }> {
  let txn: Transaction | undefined;
  try {
    const changes: string[] = [];
    prepareStore(dir, !dryRun, changes);
    const index = readIndex(dir);
    const ca = loadPair(dir, paths.caCert, paths.caKey);
    for (const t of targets) {
      if (t.kind === "client" && !model.clients.some((c) => c.name === t.name)) {
        throw new SecretsError(error("pki.unknown-client", "", `${t.name} is not a client in the spec`, `clients are: ${model.clients.map((c) => c.name).join(", ")}; a client removed from the spec is already refused`));
      }
      if (t.kind === "client" && !existsSync(join(dir, paths.clientCert(t.name))) && !index.clients.includes(t.name)) {
        throw new SecretsError(error("pki.not-issued", "", `${t.name} has no certificate yet`, "run a build: it issues one"));
      }
    }
    txn = dryRun ? new PlannedTransaction() : new SecretsTransaction(dir);
    changes.push(...(await reissueInto(txn, dir, model, targets, ca.pair, index, reason, now)));
    txn.commit(indexText(index));
    return { changes, diagnostics: [] };
  } catch (e) {
    if (e instanceof SecretsError) return { changes: [], diagnostics: e.diagnostics };
    throw e;
  } finally {
    txn?.abort(); // a change refused after it was staged leaves no new key behind
  }
}

/**
 * Rolls the CA: a new CA key and certificate, the old CA moved to retired/, and every leaf
 * re-issued under the new CA, all in one transaction. The ZFS keys are untouched.
 */
export async function rotateCa(dir: string, model: Model, now: Date, dryRun = false): Promise<{ changes: string[]; diagnostics: Diagnostic[] }> {
  let txn: Transaction | undefined;
  try {
    const changes: string[] = [];
    prepareStore(dir, !dryRun, changes);
    const index = readIndex(dir);
    if (index.rotation) throw new SecretsError({ ...error("pki.rotation", "", `a staged CA rotation is in progress (stage ${index.rotation.stage === "trust" ? 1 : 2} of 3)`, "finish it: f3s-gen pki rotate-ca <spec> (once per stage, deploying in between)"), location: { file: join(dir, paths.index), line: 1, col: 1 } });
    loadPair(dir, paths.caCert, paths.caKey); // the old CA must be intact before it is replaced
    const [key] = await generateKeys(1, model.pki.key);
    const ca = { certPem: await issueCa(key!, subjectFor(model, model.pki.caCommonName), { now, validityDays: model.pki.validityDays }), keyPem: key!.privatePem };
    txn = dryRun ? new PlannedTransaction() : new SecretsTransaction(dir);
    const old = retiredRecord(dir, { kind: "ca" }, "renewed", now);
    retireInto(txn, dir, { kind: "ca" }, old);
    index.retired.push(old);
    txn.put(paths.caKey, ca.keyPem);
    txn.put(paths.caCert, ca.certPem);
    const leaves: ReissueTarget[] = [{ kind: "server" }, ...model.clients.filter((c) => existsSync(join(dir, paths.clientCert(c.name)))).map((c) => ({ kind: "client" as const, name: c.name }))];
    const reissued = await reissueInto(txn, dir, model, leaves, ca, index, "renewed", now);
    txn.commit(indexText(index));
    return { changes: [...changes, `new CA; the old one (${old.serial}) moved to retired/`, ...reissued], diagnostics: [] };
  } catch (e) {
    if (e instanceof SecretsError) return { changes: [], diagnostics: e.diagnostics };
    throw e;
  } finally {
    txn?.abort(); // a change refused after it was staged leaves no new key behind
  }
}
