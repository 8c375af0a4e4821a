// What a template sees for one host: the model, the host itself, role-specific derived values and
// only the secrets this host's tarball needs (never the CA key).
import { dropInsOf } from "./overrides.js";
import { seconds, type Client, type HostRef, type Model, type StorageNode } from "../spec/model.js";
import { compareStrings } from "../order.js";
import type { Secrets } from "../pki/secrets.js";
import { ACTIVATION_SCRIPT, ALLOWED_CLIENTS_DIR, MONITOR_STATE_DIR } from "./artifacts.js";
import { familyOf, stateDirOf, type Family } from "./release.js";

export interface StorageView {
  node: StorageNode;
  peer: StorageNode;
  isPrimary: boolean;
  isStandby: boolean;
  /** zfskeys_datasets: the encryption roots, plus the received NFS dataset on the standby. */
  zfskeysDatasets: string;
  /** Each encryption root with this node's key file for it. */
  roots: { dataset: string; keyFile: string }[];
  failback: boolean;
  /** The NFS dataset as this node holds it (the received copy on the standby). */
  nfsDataset: string;
  /** Datasets whose keys must be loaded here (zfskeys_datasets as a list). */
  keyDatasets: string[];
  /** The replicated datasets as this node holds them, with their snapshot limit. */
  snapshotDatasets: { dataset: string; limit: number; maxAge: number }[];
  /** The ZFS pools the node's datasets live in: activation's preflight checks each exists. */
  pools: string[];
  /** Every key activation needs on the key stick, with the dataset it unlocks. */
  preflightKeys: { dataset: string; keyFile: string }[];
  /** Seconds a MASTER waits at shutdown for the peer to take the VIP (rc.d/f3s_carp_sync). */
  handoverWait: number;
  /** The directory of the clients' stunnel allow-lists (relative to /). */
  allowedClientsDir: string;
}

export interface HostContext {
  model: Model;
  host: HostRef & { fqdn: string };
  family: Family;
  /** Where activation keeps its record and the staged releases (/var/db/f3s, /var/lib/f3s). */
  stateDir: string;
  /** A release's own activation script, relative to the release's directory. */
  activationScript: string;
  /** The client mount monitor's directory: its lock serialises repairs with activation. */
  monitorStateDir: string;
  /** systemd drop-ins from the spec's overrides (relative paths): activation reloads systemd when they change. */
  dropIns: string[];
  storage?: StorageView;
  client?: Client;
  tls: {
    /** Every CA certificate this host trusts (the current CA; during a rotation also the other). */
    trustedCas: string;
    serverCert?: string;
    serverKey?: string;
    /**
     * Per client in the spec, its stunnel service's verifyPeer allow-list: the trusted CAs (for
     * verifyChain) and that client's own certificate(s), no other client's.
     */
    allowedClients?: { name: string; pem: string }[];
    /** This client's certificate and key in one file. */
    clientPem?: string;
  };
}

export function hostContext(model: Model, host: HostRef, secrets: Secrets): HostContext {
  const family = familyOf(host.role);
  const base = { model, family, stateDir: "/" + stateDirOf(family), activationScript: ACTIVATION_SCRIPT, monitorStateDir: MONITOR_STATE_DIR, dropIns: dropInsOf(model, host), tls: { trustedCas: secrets.trust.map((pem) => (pem.endsWith("\n") ? pem : pem + "\n")).join("") } };
  if (host.role === "storage") {
    const node = model.storageNodes.find((n) => n.name === host.name)!;
    const peer = model.storageNodes.find((n) => n.name !== host.name)!;
    const isPrimary = node.role === "primary";
    const rootNames = model.encryption.roots.map((r) => r.dataset);
    const keyDatasets = isPrimary ? rootNames : [...rootNames, model.replication.receivedNfsDataset];
    const roots = model.encryption.roots.map((r) => ({ dataset: r.dataset, keyFile: `${model.encryption.keyDirectory}/${node.fqdn}:${r.key}.key` }));
    const pool = (dataset: string) => dataset.split("/")[0]!;
    const own = isPrimary ? model.nfs.dataset : model.replication.sinkRoot;
    // During a CA rotation a client may present its current or its next (or previous) certificate.
    const allowed = model.clients.map((c) => ({ name: c.name, pem: [...secrets.trust, secrets.clients.get(c.name)!.certPem, ...(secrets.alsoAllowed.get(c.name) ?? [])].map(trimPem).join("\n") + "\n" }));
    return {
      ...base,
      host: { ...host, fqdn: node.fqdn },
      storage: {
        node,
        peer,
        isPrimary,
        isStandby: !isPrimary,
        zfskeysDatasets: keyDatasets.join(" "),
        roots,
        failback: isPrimary && model.failback.enabled,
        nfsDataset: isPrimary ? model.nfs.dataset : model.replication.receivedNfsDataset,
        keyDatasets,
        // How old a dataset's newest snapshot may get: the NFS dataset's is the replication lag limit
        // (monitoring.maxReplicationLag); any other's follows its own interval (two missed snapshots
        // and five minutes), so an hourly dataset is not degraded for most of each hour.
        snapshotDatasets: model.replication.jobs.map((j) => ({
          dataset: isPrimary ? j.dataset : j.sinkPath,
          limit: j.snapshotLimit,
          maxAge: j.dataset === model.nfs.dataset ? model.monitoring.maxLagSeconds : 2 * seconds(j.interval) + 300,
        })),
        pools: [...new Set([...rootNames, own].map(pool))].sort(compareStrings),
        // The standby also needs the primary's key for the received NFS dataset.
        preflightKeys: isPrimary ? roots : [...roots, { dataset: model.replication.receivedNfsDataset, keyFile: model.encryption.nfsKeyFile }],
        // Longer than this node's master-down interval at the hand-over advskew (3 x advbase + 254/256 s).
        handoverWait: 3 * model.vip.advbase + 3,
        allowedClientsDir: ALLOWED_CLIENTS_DIR,
      },
      tls: { ...base.tls, serverCert: secrets.server.certPem, serverKey: secrets.server.keyPem, allowedClients: allowed },
    };
  }
  if (host.role === "client") {
    const client = model.clients.find((c) => c.name === host.name)!;
    const pair = secrets.clients.get(client.name)!;
    return { ...base, host: { ...host, fqdn: client.fqdn }, client, tls: { ...base.tls, clientPem: trimPem(pair.certPem) + "\n" + trimPem(pair.keyPem) + "\n" } };
  }
  const member = model.members.find((m) => m.name === host.name)!;
  return { ...base, host: { ...host, fqdn: member.fqdn } };
}

const trimPem = (pem: string) => pem.trim();
