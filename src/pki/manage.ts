// Day-2 PKI: status of every certificate, renewal of leaf certificates under the same CA, and
// revocation of a client whose key is compromised while it keeps its place in the spec.
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { error, type Diagnostic } from "../diag/diagnostic.js";
import type { Model } from "../spec/model.js";
import { issueCa, issueLeaf } from "./certs.js";
import { generateKeys } from "./keys.js";
import {
  clientProfile, subjectFor, daysLeft, loadPair, paths, readIndex, retire, serverProfile, writeSecretFile, SecretsError, EXPIRY_WARNING_DAYS,
  type RetiredCert,
} from "./secrets.js";

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

function status(host: string, kind: CertStatus["kind"], file: string, now: Date): CertStatus {
  const cert = new X509Certificate(readFileSync(file));
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
export function pkiStatus(dir: string, now: Date): { certs: CertStatus[]; retired: RetiredCert[] } {
  if (!existsSync(join(dir, paths.index))) throw new SecretsError({ ...error("secrets", "", "not an f3s-gen secrets directory (no index.json)", "pass --secrets DIR, or run a build first"), location: { file: dir, line: 1, col: 1 } });
  const index = readIndex(dir);
  const certs = [status("CA", "ca", join(dir, paths.caCert), now), status("server", "server", join(dir, paths.serverCert), now)];
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
  for (const f of clients) certs.push(status(f.slice(0, -"-cert.pem".length), "client", join(dir, "clients", f), now));
  return { certs, retired: index.retired };
}

export type ReissueTarget = { kind: "server" } | { kind: "client"; name: string };

/**
 * Moves the current pair aside (recorded in index.json with the reason) and issues a new key and
 * certificate under the same CA. Nothing else changes.
 */
export async function reissue(dir: string, model: Model, targets: ReissueTarget[], reason: "renewed" | "revoked", now: Date): Promise<{ changes: string[]; diagnostics: Diagnostic[] }> {
  try {
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
    const keys = await generateKeys(targets.length, model.pki.key);
    const changes: string[] = [];
    const issueOpts = { now, validityDays: model.pki.validityDays };
    for (const [i, t] of targets.entries()) {
      const name = t.kind === "server" ? "server" : t.name;
      const profile = t.kind === "server" ? serverProfile(model) : clientProfile(model, t.name);
      // Issued before the old pair moves aside, so a failure cannot leave the name without one.
      const cert = await issueLeaf(keys[i]!, profile, ca.pair, issueOpts);
      // A pair whose files are lost (the index still records it) is simply issued again.
      const certFile = t.kind === "server" ? paths.serverCert : paths.clientCert(t.name);
      const record = existsSync(join(dir, certFile)) ? retire(dir, name, reason, now) : undefined;
      if (record) index.retired.push(record);
      writeSecretFile(dir, t.kind === "server" ? paths.serverKey : paths.clientKey(t.name), keys[i]!.privatePem);
      writeSecretFile(dir, t.kind === "server" ? paths.serverCert : paths.clientCert(t.name), cert);
      changes.push(record ? `${reason} ${name}: old certificate ${record.serial} moved to retired/, new key and certificate issued` : `${reason} ${name}: its files were missing; new key and certificate issued`);
    }
    writeSecretFile(dir, paths.index, JSON.stringify(index, null, 2) + "\n");
    return { changes, diagnostics: [] };
  } catch (e) {
    if (e instanceof SecretsError) return { changes: [], diagnostics: [e.diagnostic] };
    throw e;
  }
}

/**
 * Rolls the CA: a new CA key and certificate, the old CA moved to retired/, and every leaf
 * re-issued under the new CA. The ZFS keys are untouched.
 */
export async function rotateCa(dir: string, model: Model, now: Date): Promise<{ changes: string[]; diagnostics: Diagnostic[] }> {
  try {
    const index = readIndex(dir);
    loadPair(dir, paths.caCert, paths.caKey); // the old CA must be intact before it is replaced
    const [key] = await generateKeys(1, model.pki.key);
    const caCert = await issueCa(key!, subjectFor(model, model.pki.caCommonName), { now, validityDays: model.pki.validityDays });
    const retired = retire(dir, "CA", "renewed", now);
    index.retired.push(retired);
    writeSecretFile(dir, paths.caKey, key!.privatePem);
    writeSecretFile(dir, paths.caCert, caCert);
    writeSecretFile(dir, paths.index, JSON.stringify(index, null, 2) + "\n");
    const leaves: ReissueTarget[] = [{ kind: "server" }, ...model.clients.filter((c) => existsSync(join(dir, paths.clientCert(c.name)))).map((c) => ({ kind: "client" as const, name: c.name }))];
    const r = await reissue(dir, model, leaves, "renewed", now);
    return { changes: [`new CA; the old one (${retired.serial}) moved to retired/`, ...r.changes], diagnostics: r.diagnostics };
  } catch (e) {
    if (e instanceof SecretsError) return { changes: [], diagnostics: [e.diagnostic] };
    throw e;
  }
}
