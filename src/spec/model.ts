// The typed model: the spec with every default applied and every derived value computed once, so
// that templates only ever print values and never decide anything.
import { parsePrefix } from "./net.js";
import { defaultJobName } from "./semantic.js";
import { systemdEscapePath } from "./systemd-escape.js";
import type { KeyAlgorithm } from "../pki/keys.js";
import type { Override } from "./overrides.js";
import type { Spec } from "./types.js";
import { compareStrings } from "../order.js";

export type Role = "storage" | "client" | "member";

export interface StorageNode {
  name: string;
  fqdn: string;
  role: "primary" | "standby";
  address: string;
  prefix: number;
  replicationAddress: string;
  advskew: number;
  /** Where the rollout reaches the host over SSH. */
  sshHost: string;
}

export interface ReplicationJob {
  name: string;
  dataset: string;
  interval: string;
  keep: number;
  /** More snapshots than this on either side means pruning is held back (e.g. by not_replicated). */
  snapshotLimit: number;
  /** Where the standby receives it: <sinkRoot>/<primary>/<dataset>. */
  sinkPath: string;
  /** zrepl's filesystems filter for it: the dataset, or "<dataset><" with its children. */
  filter: string;
}

export interface EncryptionRoot {
  dataset: string;
  key: string;
}

export interface ClientMount {
  export: string;
  /** The export relative to the NFSv4 root ("/" for the root itself). */
  v4Path: string;
  mountpoint: string;
  /** systemd unit name, e.g. data-nfs-k3svolumes.mount */
  unit: string;
  options: string;
}

/** What a client's distribution decides: how stunnel runs, what to install, the nobody group. */
export interface ClientPlatform {
  family: "rhel" | "debian";
  /** The unit that runs the tunnel: the distribution's stunnel.service, or f3s-stunnel.service shipped by f3s-gen. */
  stunnelUnit: string;
  ownStunnelUnit: boolean;
  /** Absolute path of the tunnel's configuration. */
  stunnelConf: string;
  stunnelBinary: string;
  /** Commands activation needs, and the command that installs them. */
  tools: string[];
  install: string;
  /** idmapd's Nobody-Group: Debian calls the group nogroup. */
  nobodyGroup: string;
}

export const CLIENT_OS = ["rocky", "fedora", "debian", "ubuntu"] as const;
export type ClientOs = (typeof CLIENT_OS)[number];

/**
 * Rocky and Fedora ship stunnel.service (Type=forking) for /etc/stunnel/stunnel.conf. Debian and
 * Ubuntu ship a SysV stunnel4 script that starts every /etc/stunnel/*.conf and a stunnel@.service
 * template; f3s-gen ships its own f3s-stunnel.service there, with the configuration outside
 * /etc/stunnel so that stunnel4's script never starts a second copy on the same port.
 */
const PLATFORMS: Record<ClientPlatform["family"], ClientPlatform> = {
  rhel: {
    family: "rhel",
    stunnelUnit: "stunnel.service",
    ownStunnelUnit: false,
    stunnelConf: "/etc/stunnel/stunnel.conf",
    stunnelBinary: "/usr/bin/stunnel",
    tools: ["stunnel", "mount.nfs4", "nft"],
    install: "dnf install -y stunnel nfs-utils nftables",
    nobodyGroup: "nobody",
  },
  debian: {
    family: "debian",
    stunnelUnit: "f3s-stunnel.service",
    ownStunnelUnit: true,
    stunnelConf: "/etc/f3s/stunnel.conf",
    stunnelBinary: "/usr/bin/stunnel4",
    tools: ["stunnel4", "mount.nfs4", "nft"],
    install: "apt-get install -y stunnel4 nfs-common nftables",
    nobodyGroup: "nogroup",
  },
};

export const platformOf = (os: ClientOs): ClientPlatform => PLATFORMS[os === "debian" || os === "ubuntu" ? "debian" : "rhel"];

export interface Client {
  name: string;
  fqdn: string;
  os: ClientOs;
  platform: ClientPlatform;
  mounts: ClientMount[];
  restartStuckPods: boolean;
  redirectNfsPort: boolean;
  kubernetesNodeName: string;
  /** The kubeconfig the mount monitor's kubectl uses (restartStuckPods). */
  kubeconfig: string;
  /** Certificate and key in one file, as stunnel's cert= wants them. */
  certFile: string;
  /** Where the rollout reaches the host over SSH. */
  sshHost: string;
  /**
   * This client's own way into nfsd on the storage nodes: stunnel service `service` on the VIP at
   * `tunnelPort` (= tlsPort + slot), whose allow-list holds only this client's certificate, reaching
   * nfsd from `sourceAddress` (127.0.1.<slot> on lo0), the one address /etc/exports names for it.
   */
  slot: number;
  /** Whether the spec pins `slot` (clients[].slot); otherwise it follows the clients' order. */
  slotPinned: boolean;
  service: string;
  tunnelPort: number;
  sourceAddress: string;
  /** exports(5) -maproot for this client: clients[].rootAccess, else storage.nfs.rootAccess. */
  maproot: "nobody" | "root";
  /** The distinct exports this client's mounts name, in spec order. */
  exports: string[];
  /**
   * Its /etc/exports lines: the paths of each file system it reaches, one line per file system
   * (mountd takes a host once per file system, and a line's paths must share one). Under an export
   * of its own it reaches the export datasets below it too, by their mount points.
   */
  exportLines: string[][];
}

/** An export that is a ZFS dataset of its own (storage.nfs.exportDatasets), or a parent of one. */
export interface ExportFileSystem {
  /** Its mount point: the export's path. */
  path: string;
  /** Its dataset on the primary: <nfs.dataset>/<path under the NFS root>. */
  dataset: string;
  /** The same dataset as the standby receives it. */
  receivedDataset: string;
}

export interface Member {
  name: string;
  fqdn: string;
  sshHost: string;
}

export interface HostRef {
  name: string;
  role: Role;
}

export interface ZfsKeyRef {
  host: string;
  key: string;
  /** <fqdn>:<key>.key */
  fileName: string;
}

export interface Model {
  domain: string;
  pki: {
    organization: string;
    country?: string;
    state?: string;
    locality?: string;
    caCommonName: string;
    /** pki.keyType and, for RSA, pki.keyBits. */
    key: KeyAlgorithm;
    validityDays: number;
  };
  vip: {
    address: string;
    hostname: string;
    fqdn: string;
    aliases: string[];
    /** hostname, aliases..., fqdn: the names in /etc/hosts and in the server certificate. */
    names: string[];
    hostsLine: string;
    vhid: number;
    advbase: number;
    password: string;
    interface: string;
    /** The interface as rc.conf variable names spell it: FreeBSD's network.subr maps . - / + to _. */
    interfaceRcName: string;
  };
  primary: StorageNode;
  standby: StorageNode;
  storageNodes: StorageNode[];
  nfs: {
    root: string;
    dataset: string;
    tlsPort: number;
    /** exports(5) -maproot: root on a client is nobody (squash) or root there. */
    maproot: "nobody" | "root";
    markerFile: string;
    blockFile: string;
    /** storage.nfs.exportDatasets: each export below the root is a dataset of its own. */
    exportDatasets: boolean;
    /** Those datasets, parents before children (empty unless exportDatasets). */
    fileSystems: ExportFileSystem[];
  };
  replication: {
    port: number;
    sinkRoot: string;
    jobs: ReplicationJob[];
    /** zrepl's client identity of the primary at the sink. */
    clientIdentity: string;
    /** The NFS dataset as the standby holds it. */
    receivedNfsDataset: string;
  };
  encryption: {
    keyDirectory: string;
    /** The key stick's device, when f3s-activate owns its /etc/fstab line. */
    keyDevice?: string;
    keyFsType: "ufs" | "msdosfs";
    roots: EncryptionRoot[];
    /** The primary's key that unlocks the NFS dataset (also on the standby, for the received copy). */
    nfsKeyFile: string;
  };
  failback: { enabled: boolean; logFile: string };
  /** The user's extra files and patches (spec overrides), read and checked with the spec. */
  overrides: Override[];
  monitoring: {
    storageTextfileDirectory: string;
    clientTextfileDirectory: string;
    /** Seconds of replication lag (or snapshot age) above which f3s-status says degraded. */
    maxLagSeconds: number;
    /** The file the primary writes the time into every minute; its age on the standby is the lag. */
    canaryFile: string;
  };
  clients: Client[];
  members: Member[];
  /** Every host that gets a tarball, sorted by name. */
  hosts: HostRef[];
  zfsKeys: ZfsKeyRef[];
}

export const within = (path: string, root: string) => path === root || path.startsWith(root + "/");

/**
 * The export datasets: every export below the NFS root and each directory between it and the root
 * (a dataset's parent must be a dataset), sorted so that parents come first.
 */
function exportFileSystems(nfs: { root: string; dataset: string }, exports: string[], receivedNfsDataset: string): ExportFileSystem[] {
  const paths = new Set<string>();
  for (const e of exports) {
    const parts = e.slice(nfs.root.length + 1).split("/").filter(Boolean);
    for (let i = 1; i <= parts.length; i++) paths.add(parts.slice(0, i).join("/"));
  }
  return [...paths].sort(compareStrings).map((rel) => ({
    path: `${nfs.root}/${rel}`,
    dataset: `${nfs.dataset}/${rel}`,
    receivedDataset: `${receivedNfsDataset}/${rel}`,
  }));
}

/**
 * A client's /etc/exports lines: for each file system (the NFS root's and the export datasets), the
 * client's exports on it, and the file system itself when it lies below one of the client's exports
 * (NFSv4 crosses into it only when the client is granted it too).
 */
function exportLinesOf(exports: string[], root: string, fileSystems: string[]): string[][] {
  const all = [root, ...fileSystems];
  const fsOf = (p: string) => all.filter((f) => within(p, f)).sort((a, b) => b.length - a.length)[0]!;
  return all
    .map((f) => {
      const own = exports.filter((e) => fsOf(e) === f);
      const below = f !== root && !own.includes(f) && exports.some((e) => within(f, e)) ? [f] : [];
      return [...below, ...own];
    })
    .filter((paths) => paths.length > 0);
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** zrepl's interval syntax (one number, one unit) in seconds. */
export function seconds(interval: string): number {
  return Number(interval.slice(0, -1)) * UNIT_SECONDS[interval.slice(-1)]!;
}

export function keyFileName(fqdn: string, key: string): string {
  return `${fqdn}:${key}.key`;
}

/**
 * The mount options: the tunnel's port, the user's options, _netdev, and nosuid,nodev unless the
 * user asked for suid or dev: a set-uid file or a device node on the share would otherwise act on
 * every client.
 */
/** The first loopback alias of a client: 127.0.1.<slot>, outside 127.0.0.1 that every local process has. */
export const CLIENT_SOURCE_NET = "127.0.1";
/** Slots run from 1 to this: one loopback address and one port above tlsPort each. */
export const MAX_CLIENT_SLOT = 250;

/**
 * Each client's slot: the one the spec pins, else the lowest free one in list order. Pinned slots
 * are taken first, so a client added or removed never moves a pinned one.
 */
export function clientSlots(clients: readonly { slot?: number }[]): number[] {
  const taken = new Set(clients.flatMap((c) => (c.slot === undefined ? [] : [c.slot])));
  let next = 1;
  return clients.map((c) => {
    if (c.slot !== undefined) return c.slot;
    while (taken.has(next)) next++;
    taken.add(next);
    return next;
  });
}

function mountOptions(port: number, options: string[]): string {
  const safe = ["nosuid", "nodev"].filter((o) => !options.includes(o) && !options.includes(o.slice(2)));
  return [`port=${port}`, ...options, ...safe, "_netdev"].join(",");
}

const maprootOf = (access: "squash" | "root" | undefined) => (access === "squash" ? "nobody" : "root");

/** RSA keeps its size (4096 unless told); an elliptic curve has no size to choose. */
function keyAlgorithm(pki: Spec["pki"]): KeyAlgorithm {
  const type = pki.keyType ?? "rsa";
  return type === "rsa" ? { type, bits: pki.keyBits ?? 4096 } : { type };
}

export function toModel(spec: Spec, overrides: Override[] = []): Model {
  const fqdn = (name: string) => `${name}.${spec.domain}`;
  const node = (n: Spec["storage"]["nodes"][number]): StorageNode => {
    const { address, prefix } = parsePrefix(n.address);
    return {
      name: n.name,
      fqdn: fqdn(n.name),
      role: n.role,
      address,
      prefix,
      replicationAddress: n.replicationAddress,
      advskew: n.advskew ?? (n.role === "primary" ? 0 : 100),
      sshHost: n.sshHost ?? fqdn(n.name),
    };
  };
  const primary = node(spec.storage.nodes.find((n) => n.role === "primary")!);
  const standby = node(spec.storage.nodes.find((n) => n.role === "standby")!);
  const { vip, nfs, replication, encryption } = spec.storage;
  const aliases = vip.aliases ?? [];
  const vipFqdn = fqdn(vip.hostname);
  const names = [vip.hostname, ...aliases, vipFqdn];

  const jobs: ReplicationJob[] = replication.datasets.map((d) => ({
    name: d.jobName ?? defaultJobName(primary.name, standby.name, d.name),
    dataset: d.name,
    interval: d.interval,
    keep: d.keep,
    snapshotLimit: 3 * d.keep,
    sinkPath: `${replication.sinkRoot}/${primary.name}/${d.name}`,
    // zrepl's filesystems filter: "<" takes the dataset and its children (the export datasets).
    filter: d.name === nfs.dataset && nfs.exportDatasets ? `${d.name}<` : d.name,
  }));

  // The NFS dataset inherits its key from the innermost encryption root above it.
  const nfsRoot = [...encryption.roots].filter((r) => within(nfs.dataset, r.dataset)).sort((a, b) => b.dataset.length - a.dataset.length)[0]!;

  const slots = clientSlots(spec.clients);
  const clients: Client[] = spec.clients.map((c, ci) => ({
    name: c.name,
    fqdn: fqdn(c.name),
    os: c.os ?? "rocky",
    platform: platformOf(c.os ?? "rocky"),
    restartStuckPods: c.restartStuckPods ?? false,
    redirectNfsPort: c.redirectNfsPort ?? false,
    kubernetesNodeName: c.kubernetesNodeName ?? c.name,
    // Only k3s servers have this file; agents need one named in the spec (docs/failover-and-boot.md).
    kubeconfig: c.kubeconfig ?? "/etc/rancher/k3s/k3s.yaml",
    certFile: `/etc/stunnel/${c.name}-stunnel.pem`,
    sshHost: c.sshHost ?? fqdn(c.name),
    mounts: c.mounts.map((m) => ({
      export: m.export,
      v4Path: m.export === nfs.root ? "/" : m.export.slice(nfs.root.length),
      mountpoint: m.mountpoint,
      unit: systemdEscapePath(m.mountpoint) + ".mount",
      options: mountOptions(nfs.tlsPort, m.options ?? ["hard"]),
    })),
    slot: slots[ci]!,
    slotPinned: c.slot !== undefined,
    service: `nfs-${c.name}`,
    tunnelPort: nfs.tlsPort + slots[ci]!,
    sourceAddress: `${CLIENT_SOURCE_NET}.${slots[ci]!}`,
    maproot: maprootOf(c.rootAccess ?? nfs.rootAccess),
    exports: [...new Set(c.mounts.map((m) => m.export))],
    exportLines: [],
  }));
  const receivedNfsDataset = `${replication.sinkRoot}/${primary.name}/${nfs.dataset}`;
  const fileSystems = nfs.exportDatasets ? exportFileSystems(nfs, clients.flatMap((c) => c.exports), receivedNfsDataset) : [];
  for (const c of clients) c.exportLines = exportLinesOf(c.exports, nfs.root, fileSystems.map((f) => f.path));
  const members: Member[] = (spec.members ?? []).map((m) => ({ name: m.name, fqdn: fqdn(m.name), sshHost: m.sshHost ?? fqdn(m.name) }));

  const hosts: HostRef[] = [
    ...[primary, standby].map((n) => ({ name: n.name, role: "storage" as const })),
    ...clients.map((c) => ({ name: c.name, role: "client" as const })),
    ...members.map((m) => ({ name: m.name, role: "member" as const })),
  ].sort((a, b) => compareStrings(a.name, b.name));

  // Every FreeBSD host (storage nodes and members) gets its own key for every encryption root.
  const keyHosts = [primary, standby, ...members].map((h) => h.fqdn);
  const keyNames = [...new Set(encryption.roots.map((r) => r.key))];
  const zfsKeys: ZfsKeyRef[] = keyHosts
    .flatMap((host) => keyNames.map((key) => ({ host, key, fileName: keyFileName(host, key) })))
    .sort((a, b) => compareStrings(a.fileName, b.fileName));

  return {
    overrides,
    domain: spec.domain,
    pki: {
      organization: spec.pki.organization,
      country: spec.pki.country,
      state: spec.pki.state,
      locality: spec.pki.locality,
      caCommonName: spec.pki.caCommonName,
      key: keyAlgorithm(spec.pki),
      validityDays: spec.pki.validityDays ?? 3650,
    },
    vip: {
      address: vip.address,
      hostname: vip.hostname,
      fqdn: vipFqdn,
      aliases,
      names,
      hostsLine: [vip.address, ...names].join(" "),
      vhid: vip.vhid,
      advbase: vip.advbase ?? 1,
      password: vip.password,
      interface: spec.storage.interface,
      interfaceRcName: spec.storage.interface.replace(/[.\-/+]/g, "_"),
    },
    primary,
    standby,
    storageNodes: [primary, standby],
    nfs: {
      root: nfs.root,
      dataset: nfs.dataset,
      tlsPort: nfs.tlsPort,
      maproot: maprootOf(nfs.rootAccess),
      markerFile: `${nfs.root}/nfs.DO_NOT_REMOVE`,
      blockFile: `${nfs.root}/nfs.NO_AUTO_FAILBACK`,
      exportDatasets: nfs.exportDatasets ?? false,
      fileSystems,
    },
    replication: {
      port: replication.port,
      sinkRoot: replication.sinkRoot,
      jobs,
      clientIdentity: primary.name,
      receivedNfsDataset,
    },
    encryption: {
      keyDirectory: encryption.keyDirectory,
      keyDevice: encryption.keyDevice,
      keyFsType: encryption.keyFsType ?? "ufs",
      roots: encryption.roots.map((r) => ({ dataset: r.dataset, key: r.key })),
      nfsKeyFile: `${encryption.keyDirectory}/${keyFileName(primary.fqdn, nfsRoot.key)}`,
    },
    failback: { enabled: spec.storage.failback?.enabled ?? true, logFile: "/var/log/carp-auto-failback.log" },
    monitoring: {
      storageTextfileDirectory: spec.monitoring?.storageTextfileDirectory ?? "/var/tmp/node_exporter",
      clientTextfileDirectory: spec.monitoring?.clientTextfileDirectory ?? "/var/lib/node_exporter/textfile_collector",
      maxLagSeconds: spec.monitoring?.maxReplicationLag
        ? seconds(spec.monitoring.maxReplicationLag)
        : Math.max(300, 10 * seconds(jobs.find((j) => j.dataset === nfs.dataset)?.interval ?? "1m")),
      canaryFile: `${nfs.root}/nfs.LIVE_CHECK`,
    },
    clients,
    members,
    hosts,
    zfsKeys,
  };
}
