// out/ knows the cluster it was built for: its domain and the fingerprint of its CA. A build of
// another cluster's spec into it would otherwise mark every real host retired and replace
// keys.tar.gz with keys that unlock nothing; both are refused here, before anything is written.
import { existsSync } from "node:fs";
import { readSafely } from "../fs-safe.js";
import { join } from "node:path";
import { error, type Diagnostic } from "../diag/diagnostic.js";
import { readTarGz } from "./read.js";
import { OutputError } from "./output.js";

export const CLUSTER_FILE = "cluster.json";

export interface OutCluster {
  domain: string;
  /** SHA-256 fingerprint of the CA certificate the build used. */
  ca: string;
}

export function clusterFileText(cluster: OutCluster): Buffer {
  return Buffer.from(JSON.stringify({ ...cluster, note: "the cluster this directory was built for (f3s-gen refuses to build another cluster into it)" }, null, 2) + "\n");
}

function readCluster(outDir: string): OutCluster | undefined {
  const file = join(outDir, CLUSTER_FILE);
  if (!existsSync(file)) return undefined; // out/ of an older build, or none yet
  let parsed: Partial<OutCluster> | undefined;
  try {
    parsed = JSON.parse(readSafely(file, { maxBytes: 4096 }).toString("utf8")) as Partial<OutCluster>;
  } catch {
    parsed = undefined; // not JSON, or not a small regular file (a FIFO, a link): damaged
  }
  if (typeof parsed?.domain !== "string" || typeof parsed.ca !== "string") {
    throw new OutputError(`${file} is damaged: f3s-gen cannot tell which cluster ${outDir} was built for; remove it if ${outDir} is this cluster's, or choose another --out`);
  }
  return { domain: parsed.domain, ca: parsed.ca };
}

/**
 * Refuses to build `cluster` into an out/ built for another one. `lineage` holds the fingerprints
 * of this cluster's CA and of the CAs it replaced (pki rotate-ca), which stay the same cluster.
 */
export function checkOutCluster(outDir: string, cluster: OutCluster, lineage: readonly string[]) {
  const built = readCluster(outDir);
  if (!built || lineage.includes(built.ca)) return;
  const same = built.domain === cluster.domain ? " (the same domain, another CA: other secrets)" : "";
  throw new OutputError(
    `${outDir} holds the build of another cluster: ${built.domain} (CA ${built.ca.slice(0, 23)}...), not ${cluster.domain} (CA ${cluster.ca.slice(0, 23)}...)${same}; ` +
      `building into it would mark its hosts retired and replace its keys.tar.gz. Choose another --out; if it is this cluster's, name its secrets with --secrets`,
  );
}

/**
 * A ZFS key in out/keys.tar.gz that this build would replace with another: datasets encrypted with
 * the earlier key would not unlock with the new one once it is on the USB sticks.
 */
export function changedZfsKeys(outDir: string, keysTarball: string, next: ReadonlyMap<string, Buffer>): Diagnostic[] {
  const file = join(outDir, keysTarball);
  if (!existsSync(file)) return [];
  let entries;
  try {
    entries = readTarGz(file);
  } catch {
    return [];
  }
  return entries
    .filter((e) => next.has(e.path) && !next.get(e.path)!.equals(e.content))
    .map((e) => ({
      ...error(
        "zfs-key-changed",
        "",
        `${keysTarball} in ${outDir} holds another key for ${e.path} than this build would write: datasets encrypted with the earlier key would not unlock with this one`,
        `find out why the secrets directory's key differs (an older backup restored? another cluster's secrets?). Only if the datasets were re-created with the new key: build again with --replace-zfs-keys`,
      ),
      location: { file, line: 1, col: 1 },
    }));
}
