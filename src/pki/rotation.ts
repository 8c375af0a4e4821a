// Rolling the CA without an outage, in three stages; each is one transaction here and one release
// rolled out to every host before the next:
//   1. trust:   a new CA in ca-next/, and every certificate issued again from it into next/; every
//               host trusts both CAs, and the storage nodes accept each client's current and next
//               certificate; every host still presents its current certificate.
//   2. reissue: every host presents its next certificate (the new CA signs from now on); both CAs
//               stay trusted (the old one in ca-prev/) and the clients' previous certificates stay
//               accepted.
//   3. finish:  only the new CA and the new certificates.
// Any two hosts whose releases are at the same or at adjacent stages accept each other, whichever
// host of the pair was deployed first (test/rotation.test.ts, with the real stunnel).
import { X509Certificate } from "node:crypto";
import { existsSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import type { Diagnostic } from "../diag/diagnostic.js";
import type { Model } from "../spec/model.js";
import { issueCa, issueLeaf } from "./certs.js";
import { generateKeys } from "./keys.js";
import { reissueInto, type ReissueTarget } from "./manage.js";
import { clientProfile, serverProfile, subjectFor } from "./secrets.js";
import { SecretsError, indexText, loadPair, paths, prepareStore, readChecked, readIndex, retiredRecord, retireInto, type KeyPair, type RetiredCert } from "./store.js";
import { PlannedTransaction, SecretsTransaction, type Transaction } from "./transaction.js";

export type RotationStep = "trust" | "reissue" | "finish";

export interface RotationResult {
  changes: string[];
  diagnostics: Diagnostic[];
  /** The stage this call completed; undefined on failure. */
  step?: RotationStep;
}

/** Advances a staged CA rotation by one stage (starting one when none is in progress). */
export async function advanceRotation(dir: string, model: Model, now: Date, dryRun = false): Promise<RotationResult> {
  let txn: Transaction | undefined;
  try {
    const changes: string[] = [];
    prepareStore(dir, !dryRun, changes);
    const index = readIndex(dir);
    const current = loadPair(dir, paths.caCert, paths.caKey); // intact before anything moves
    txn = dryRun ? new PlannedTransaction() : new SecretsTransaction(dir);

    if (!index.rotation) {
      const [key] = await generateKeys(1, model.pki.key);
      const next = { certPem: await issueCa(key!, subjectFor(model, model.pki.caCommonName), { now, validityDays: model.pki.validityDays }), keyPem: key!.privatePem };
      txn.put(paths.caNextKey, next.keyPem);
      txn.put(paths.caNextCert, next.certPem);
      // The certificates every host will present from stage 2 on: issued now, so that the storage
      // nodes accept them before any client presents one.
      const leaves = currentLeaves(dir, model);
      const pairs = await issueLeaves(model, leaves, next, now);
      for (const [i, t] of leaves.entries()) {
        const [certRel, keyRel] = paths.pair(t);
        txn.put(paths.next(keyRel), pairs[i]!.keyPem);
        txn.put(paths.next(certRel), pairs[i]!.certPem);
      }
      index.rotation = { stage: "trust" };
      txn.commit(indexText(index));
      return {
        step: "trust",
        diagnostics: [],
        changes: [...changes, `stage 1 of 3: a new CA (${serialOf(next.certPem)}) is trusted beside the current one (${current.cert.serialNumber.toLowerCase()}), and ${leaves.length} next certificates issued from it; every host still presents its current one`],
      };
    }

    if (index.rotation.stage === "trust") {
      loadPair(dir, paths.caNextCert, paths.caNextKey); // intact before it takes over
      // The current CA becomes the previous one: its certificate stays trusted, its key signs no more.
      const old = retiredRecord(dir, { kind: "ca" }, "renewed", now);
      txn.move(paths.caKey, `retired/ca-${old.serial}/ca-key.pem`);
      txn.move(paths.caCert, paths.caPrevCert);
      txn.move(paths.caNextKey, paths.caKey);
      txn.move(paths.caNextCert, paths.caCert);
      index.retired.push(old);
      // Every host's next certificate takes the place of its current one, which is retired (a
      // client's stays accepted until the last stage).
      const previousClients: { name: string; serial: string }[] = [];
      const missing: ReissueTarget[] = [];
      for (const t of currentLeaves(dir, model)) {
        const [certRel, keyRel] = paths.pair(t);
        if (!existsSync(join(dir, paths.next(certRel))) || !existsSync(join(dir, paths.next(keyRel)))) {
          missing.push(t); // a client added during stage 1: issued from the new CA below
          continue;
        }
        const record = retiredRecord(dir, t, "renewed", now);
        retireInto(txn, dir, t, record);
        index.retired.push(record);
        if (t.kind === "client") previousClients.push({ name: t.name, serial: record.serial });
        txn.move(paths.next(keyRel), keyRel);
        txn.move(paths.next(certRel), certRel);
      }
      const next = loadPair(dir, paths.caNextCert, paths.caNextKey);
      const records: RetiredCert[] = [];
      const issued = missing.length ? await reissueInto(txn, dir, model, missing, next.pair, index, "renewed", now, records) : [];
      for (const r of records) if (r.kind === "client") previousClients.push({ name: r.name, serial: r.serial });
      index.rotation = { stage: "reissue", previousClients };
      txn.commit(indexText(index));
      if (!dryRun) {
        removeIfEmpty(join(dir, "ca-next"));
        for (const d of ["next/clients", "next/server", "next"]) removeIfEmpty(join(dir, d));
      }
      return {
        step: "reissue",
        diagnostics: [],
        changes: [...changes, `stage 2 of 3: every host presents its certificate from the new CA, which signs from now on; the old CA and the clients' previous certificates are still accepted`, ...issued],
      };
    }

    // finish: the previous CA leaves the trust, its clients' old certificates the allow-list.
    const prev = new X509Certificate(readChecked(dir, paths.caPrevCert));
    txn.move(paths.caPrevCert, `retired/ca-${prev.serialNumber.toLowerCase()}/ca-cert.pem`);
    delete index.rotation;
    txn.commit(indexText(index));
    if (!dryRun) removeIfEmpty(join(dir, "ca-prev"));
    return { step: "finish", diagnostics: [], changes: [...changes, `stage 3 of 3: only the new CA (${current.cert.serialNumber.toLowerCase()}) and its certificates are trusted; the old CA (${prev.serialNumber.toLowerCase()}) is retired`] };
  } catch (e) {
    if (e instanceof SecretsError) return { changes: [], diagnostics: e.diagnostics };
    throw e;
  } finally {
    txn?.abort(); // a change refused after it was staged leaves no new key behind
  }
}

/** The certificates the secrets directory holds now: the server's, and each client's in the spec. */
function currentLeaves(dir: string, model: Model): ReissueTarget[] {
  return [{ kind: "server" }, ...model.clients.filter((c) => existsSync(join(dir, paths.clientCert(c.name)))).map((c) => ({ kind: "client" as const, name: c.name }))];
}

async function issueLeaves(model: Model, targets: ReissueTarget[], ca: KeyPair, now: Date): Promise<KeyPair[]> {
  const keys = await generateKeys(targets.length, model.pki.key);
  const out: KeyPair[] = [];
  for (const [i, t] of targets.entries()) {
    const profile = t.kind === "server" ? serverProfile(model) : clientProfile(model, t.name);
    out.push({ certPem: await issueLeaf(keys[i]!, profile, ca, { now, validityDays: model.pki.validityDays }), keyPem: keys[i]!.privatePem });
  }
  return out;
}

/** A directory the rotation emptied (the transaction moves files, not directories). */
function removeIfEmpty(path: string) {
  try {
    rmdirSync(path);
  } catch {
    // not empty, or gone: nothing to tidy
  }
}

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase();
