// Rules the schema cannot express: relations between fields. Runs only on a spec the schema
// accepted, so every field has its declared type. Returns diagnostics; never throws.
import { error, warning, pointerOf, showValue, type Diagnostic } from "../diag/diagnostic.js";
import { ipv4ToInt, subnetOf, intToIpv4 } from "./net.js";
import { systemdEscapePath } from "./systemd-escape.js";
import type { Spec } from "./types.js";
import { clientSlots, MAX_CLIENT_SLOT, within } from "./model.js";
import { closest } from "./suggest.js";
import { EXPIRY_WARNING_DAYS } from "../pki/expiry.js";

/** Ports the storage nodes already use for NFS itself: stunnel cannot take them on the VIP. */
const RESERVED_PORTS: Record<number, string> = { 111: "rpcbind", 2049: "nfsd" };

/** Passwords that appear in tutorials; a CARP group using one can be joined by anyone who read them. */
const WELL_KNOWN_PASSWORDS = new Set(["testpass", "password", "changeme", "secret", "carp", "carppass", "admin", "pass"]);

/** Mountpoints a network mount must never cover: the system itself lives there. */
const SYSTEM_DIRS = ["/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/root", "/run", "/sbin", "/sys", "/usr", "/var", "/var/lib", "/var/log", "/tmp"];
const SYSTEM_TREES = ["/boot", "/dev", "/proc", "/run", "/sys", "/etc"];

/** Limits of the names f3s-gen derives (bytes): file names, ZFS dataset names, interface names, FQDNs. */
const NAME_MAX = 255;
const ZFS_NAME_MAX = 255;
const IFNAME_MAX = 15;
const FQDN_MAX = 253;
/** Secrets are written as <name>.tmp-<pid> first: keep room for that suffix. */
const TEMP_SUFFIX = ".tmp-4194304".length;

/** Each group of checks with the parts of the spec it reads. */
const GROUPS: [(spec: Spec, out: Diagnostic[]) => void, string[]][] = [
  [checkPki, ["/pki"]],
  [checkHostNames, ["/domain", "/storage/vip", "/storage/nodes", "/clients", "/members"]],
  [checkNodes, ["/storage/vip", "/storage/nodes"]],
  [checkNfs, ["/storage/nfs", "/storage/replication"]],
  [checkReplication, ["/storage/replication", "/storage/nodes"]],
  [checkEncryption, ["/storage/encryption", "/storage/replication", "/storage/nfs"]],
  [checkClients, ["/clients", "/storage/nfs"]],
  [checkExportDatasets, ["/clients", "/storage/nfs", "/storage/nodes", "/storage/replication"]],
  [checkDerivedNames, ["/domain", "/storage", "/clients", "/members"]],
];

const touches = (a: string, b: string) => a === b || a.startsWith(b + "/") || b.startsWith(a + "/") || a === "" || b === "";

/**
 * Runs every group whose inputs passed the schema, so one run reports schema and semantic errors
 * together; a group that reads a part with a schema error is skipped (it would only guess).
 */
export function checkSemantics(spec: Spec, schemaErrorPointers: readonly string[] = []): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const [check, reads] of GROUPS) {
    if (reads.some((r) => schemaErrorPointers.some((p) => touches(p, r)))) continue;
    check(spec, out);
  }
  return out;
}

function checkPki(spec: Spec, out: Diagnostic[]) {
  const { keyType, keyBits } = spec.pki;
  if (keyType && keyType !== "rsa" && keyBits !== undefined) {
    out.push(error("key-bits-not-rsa", "/pki/keyBits", `keyBits ${keyBits} applies to RSA keys only, but keyType is ${keyType}`, `remove keyBits (the curve fixes the size), or write keyType: rsa`));
  }
  const days = spec.pki.validityDays;
  if (days !== undefined && days <= EXPIRY_WARNING_DAYS) {
    out.push(
      warning(
        "short-validity",
        "/pki/validityDays",
        `validityDays ${days} is within the ${EXPIRY_WARNING_DAYS}-day expiry warning: every certificate would be "expiring" from the day it is issued, and expire between two deploys`,
        "use a year or more (the default is 3650) and renew with f3s-gen pki renew",
      ),
    );
  }
}

/** Names the secrets directory and out/ use for their own files: a host may not take them. */
const RESERVED_NAMES = new Set(["keys", "server", "ca", "clients", "zfs", "retired", "index"]);

function checkHostNames(spec: Spec, out: Diagnostic[]) {
  const seen = new Map<string, string>();
  const note = (name: string, pointer: string) => {
    if (RESERVED_NAMES.has(name.toLowerCase()) && pointer !== "/storage/vip/hostname") {
      out.push(error("reserved-name", pointer, `host name ${showValue(name)} is reserved`, `f3s-gen names its own files ${[...RESERVED_NAMES].join(", ")} (e.g. out/keys.tar.gz, the secrets directory's server/): choose another name`));
    }
    const first = seen.get(name);
    if (first) {
      out.push(error("duplicate-name", pointer, `host name ${showValue(name)} is already used at ${first}`, "every storage node, client, member and the VIP hostname needs its own name"));
    } else seen.set(name, pointer);
  };
  note(spec.storage.vip.hostname, "/storage/vip/hostname");
  spec.storage.nodes.forEach((n, i) => note(n.name, `/storage/nodes/${i}/name`));
  spec.clients.forEach((c, i) => note(c.name, `/clients/${i}/name`));
  (spec.members ?? []).forEach((m, i) => note(m.name, `/members/${i}/name`));
  const fqdn = `${spec.storage.vip.hostname}.${spec.domain}`;
  (spec.storage.vip.aliases ?? []).forEach((alias, i) => {
    if (/^localhost(\.|$)/i.test(alias)) {
      out.push(error("alias-localhost", `/storage/vip/aliases/${i}`, `alias ${showValue(alias)} would make localhost resolve to the VIP`, "remove it: every program on the host expects localhost to be the loopback address"));
    } else if (alias === spec.storage.vip.hostname || alias === fqdn) {
      out.push(error("duplicate-alias", `/storage/vip/aliases/${i}`, `alias ${showValue(alias)} repeats the VIP's own name`, "remove it: the hostname and <hostname>.<domain> are always listed"));
    } else if (seen.has(alias) && alias !== spec.storage.vip.hostname) {
      out.push(error("duplicate-name", `/storage/vip/aliases/${i}`, `alias ${showValue(alias)} is the name of a host (${seen.get(alias)})`, "a VIP alias must not shadow a host name in /etc/hosts"));
    }
  });
}

function checkNodes(spec: Spec, out: Diagnostic[]) {
  const { nodes, vip } = spec.storage;
  for (const role of ["primary", "standby"] as const) {
    const count = nodes.filter((n) => n.role === role).length;
    if (count !== 1) {
      const at = nodes.findIndex((n, i) => n.role === role && i > 0);
      out.push(
        error(
          "node-roles",
          count === 0 ? "/storage/nodes" : `/storage/nodes/${at}/role`,
          `exactly one storage node must have role ${role}; found ${count}`,
          "give one node role: primary and the other role: standby",
        ),
      );
    }
  }
  const vipInt = ipv4ToInt(vip.address);
  // Both nodes on one LAN (as they must be): one finding about the VIP, not one per node.
  const reported = new Set<string>();
  nodes.forEach((n, i) => {
    if (n.replicationAddress === vip.address) {
      out.push(error("replication-on-vip", `/storage/nodes/${i}/replicationAddress`, `the replication address of ${n.name} is the VIP ${vip.address}`, "zrepl needs each node's own address (it moves with the VIP otherwise): use the node's fixed, e.g. WireGuard, address"));
    }
    const subnet = subnetOf(n.address);
    const nodeIp = n.address.split("/")[0]!;
    if (subnet.prefix > 30) {
      out.push(error("node-prefix", `/storage/nodes/${i}/address`, `prefix /${subnet.prefix} of ${showValue(n.address)} leaves no room for the VIP`, "write the LAN's real prefix length, e.g. /24"));
    } else if (vipInt < subnet.network || vipInt > subnet.broadcast) {
      if (reported.has(`${subnet.network}/${subnet.prefix}`)) return;
      reported.add(`${subnet.network}/${subnet.prefix}`);
      out.push(
        error(
          "vip-outside-subnet",
          "/storage/vip/address",
          `VIP ${vip.address} is outside ${n.name}'s subnet ${intToIpv4(subnet.network)}/${subnet.prefix}`,
          `CARP only works on the node's own LAN: pick a free address between ${intToIpv4(subnet.network + 1)} and ${intToIpv4(subnet.broadcast - 1)}`,
        ),
      );
    } else if (vipInt === subnet.network || vipInt === subnet.broadcast) {
      out.push(error("vip-reserved", "/storage/vip/address", `VIP ${vip.address} is the ${vipInt === subnet.network ? "network" : "broadcast"} address of ${n.name}'s subnet`, "pick a free host address inside the subnet"));
    }
    if (nodeIp === vip.address) {
      out.push(error("vip-is-node", "/storage/vip/address", `VIP ${vip.address} is ${n.name}'s own address`, "the VIP must be a free address that moves between the nodes"));
    }
  });
  if (nodes.length === 2) {
    const [a, b] = nodes as [Spec["storage"]["nodes"][0], Spec["storage"]["nodes"][0]];
    if (a.address.split("/")[0] === b.address.split("/")[0]) {
      out.push(error("duplicate-address", "/storage/nodes/1/address", `both storage nodes have address ${a.address.split("/")[0]}`, "give each node its own LAN address"));
    } else if (a.address.split("/")[1] !== b.address.split("/")[1] || subnetOf(a.address).network !== subnetOf(b.address).network) {
      out.push(error("nodes-different-subnets", "/storage/nodes/1/address", `${b.name} (${b.address}) is not in ${a.name}'s subnet (${a.address})`, "CARP needs both nodes on one LAN segment with the same prefix"));
    }
    if (a.replicationAddress === b.replicationAddress) {
      out.push(error("duplicate-address", "/storage/nodes/1/replicationAddress", `both storage nodes have replicationAddress ${a.replicationAddress}`, "give each node its own replication address"));
    }
    const primary = nodes.find((n) => n.role === "primary");
    const standby = nodes.find((n) => n.role === "standby");
    if (primary && standby) {
      const ps = primary.advskew ?? 0;
      const ss = standby.advskew ?? 100;
      if (ss <= ps) {
        const at = nodes.indexOf(standby);
        out.push(
          warning("advskew-order", `/storage/nodes/${at}/advskew`, `the standby's advskew (${ss}) is not above the primary's (${ps}), so the primary does not win CARP elections after a reboot`, "give the standby a higher advskew, e.g. 100"),
        );
      }
    }
  }
  // Absent when its file or variable could not be read (reported where it is named).
  if (typeof vip.password === "string" && (WELL_KNOWN_PASSWORDS.has(vip.password.toLowerCase()) || vip.password.length < 8)) {
    out.push(
      warning("weak-carp-password", "/storage/vip/password", "the CARP password is short or a well-known example value (it is not shown here)", "use 12 to 19 random characters, e.g. `openssl rand -base64 12`"),
    );
  }
}

function checkNfs(spec: Spec, out: Diagnostic[]) {
  const { nfs, replication } = spec.storage;
  const service = RESERVED_PORTS[nfs.tlsPort];
  if (service) {
    out.push(error("port-conflict", "/storage/nfs/tlsPort", `port ${nfs.tlsPort} is ${service}'s own port on the storage nodes`, "pick another free port for stunnel (above 1024, not used by NFS)"));
  }
  if (!replication.datasets.some((d) => d.name === nfs.dataset)) {
    // A replicated dataset one typo away from the NFS dataset is the mistake: reported where it is.
    const near = closest(nfs.dataset, replication.datasets.map((d) => d.name));
    const at = near === undefined ? -1 : replication.datasets.findIndex((d) => d.name === near);
    if (at >= 0) {
      out.push(error("nfs-not-replicated", `/storage/replication/datasets/${at}/name`, `replicated dataset ${showValue(near!)} is not the NFS dataset ${showValue(nfs.dataset)}, which is not replicated`, `did you mean ${showValue(nfs.dataset)}? Otherwise add the NFS dataset to storage.replication.datasets`));
    } else out.push(error("nfs-not-replicated", "/storage/nfs/dataset", `NFS dataset ${showValue(nfs.dataset)} is not in storage.replication.datasets`, "add it to the replicated datasets, or the standby has nothing to serve after a failover"));
  }
}

function checkReplication(spec: Spec, out: Diagnostic[]) {
  const names = new Map<string, number>();
  const jobs = new Map<string, number>();
  const [primary, standby] = ["primary", "standby"].map((r) => spec.storage.nodes.find((n) => n.role === r)?.name ?? r);
  spec.storage.replication.datasets.forEach((d, i) => {
    if (names.has(d.name)) {
      out.push(error("duplicate-dataset", `/storage/replication/datasets/${i}/name`, `dataset ${showValue(d.name)} is listed twice (first at index ${names.get(d.name)})`, "list each replicated dataset once"));
    } else names.set(d.name, i);
    const job = d.jobName ?? defaultJobName(primary!, standby!, d.name);
    if (jobs.has(job)) {
      out.push(
        error(
          "duplicate-job",
          `/storage/replication/datasets/${i}`,
          `zrepl job name ${showValue(job)} is also the name of datasets[${jobs.get(job)}]'s job`,
          "set a distinct jobName on one of them (zrepl job names must be unique and cannot be renamed easily later)",
        ),
      );
    } else jobs.set(job, i);
    if (job === "sink") out.push(error("reserved-job", `/storage/replication/datasets/${i}`, `zrepl job name "sink" is taken by the standby's sink job`, "set another jobName"));
    if (within(d.name, spec.storage.replication.sinkRoot) || within(spec.storage.replication.sinkRoot, d.name)) {
      out.push(error("sink-overlap", `/storage/replication/datasets/${i}/name`, `dataset ${showValue(d.name)} overlaps the sink root ${showValue(spec.storage.replication.sinkRoot)}`, "keep replicated datasets and the sink root apart"));
    }
  });
}

/** With storage.nfs.exportDatasets: what the export datasets need from the rest of the spec. */
function checkExportDatasets(spec: Spec, out: Diagnostic[]) {
  const nfs = spec.storage.nfs;
  if (!nfs.exportDatasets) return;
  // The NFS dataset's job takes every dataset below it ("<dataset><"): a second job for one of them
  // would send it twice (zrepl refuses overlapping push jobs).
  spec.storage.replication.datasets.forEach((d, i) => {
    if (d.name !== nfs.dataset && within(d.name, nfs.dataset)) {
      out.push(
        error(
          "export-datasets-overlap",
          `/storage/replication/datasets/${i}/name`,
          `dataset ${showValue(d.name)} lies below the NFS dataset ${showValue(nfs.dataset)}, whose job replicates every dataset below it with exportDatasets`,
          "remove this entry: the NFS dataset's job replicates it already",
        ),
      );
    }
  });
  // An export's longest dataset name is the standby's received copy (zfs: 255 bytes at most).
  const primary = spec.storage.nodes.find((n) => n.role === "primary")?.name ?? "";
  spec.clients.forEach((c, ci) =>
    c.mounts.forEach((m, mi) => {
      if (m.export === nfs.root || !within(m.export, nfs.root)) return;
      const received = `${spec.storage.replication.sinkRoot}/${primary}/${nfs.dataset}${m.export.slice(nfs.root.length)}`;
      if (received.length > 255) {
        out.push(error("export-dataset-name-too-long", `/clients/${ci}/mounts/${mi}/export`, `export ${showValue(m.export)} would be the dataset ${showValue(received)} on the standby: ${received.length} bytes, and ZFS allows 255`, "use a shorter path below the NFS root (or a shorter sinkRoot)"));
      }
    }),
  );
}

export function defaultJobName(primary: string, standby: string, dataset: string): string {
  return `${primary}_to_${standby}_${dataset.split("/").pop()}`;
}

function checkEncryption(spec: Spec, out: Diagnostic[]) {
  const roots = spec.storage.encryption.roots;
  const seen = new Map<string, number>();
  roots.forEach((r, i) => {
    if (seen.has(r.dataset)) out.push(error("duplicate-root", `/storage/encryption/roots/${i}/dataset`, `encryption root ${showValue(r.dataset)} is listed twice`, "list each encryption root once"));
    else seen.set(r.dataset, i);
    // The key name becomes a file name in the secrets directory (zfs/<fqdn>:<key>.key), where no
    // name may hold ".." (the index and the transaction journal refuse it, to stay inside the directory).
    if (r.key.includes("..")) out.push(error("key-name-dots", `/storage/encryption/roots/${i}/key`, `key name ${showValue(r.key)} contains "..", which no file name in the secrets directory may hold`, `use single dots, e.g. ${showValue(r.key.replace(/\.{2,}/g, "."))}`));
  });
  // The key directory holds the raw keys of every encryption root: under the NFS root it would be
  // exported to every client (and replicated to the standby's export).
  const keyDir = spec.storage.encryption.keyDirectory.replace(/\/+$/, "");
  const nfsRoot = spec.storage.nfs.root.replace(/\/+$/, "");
  if (within(keyDir, nfsRoot) || within(nfsRoot, keyDir)) {
    out.push(
      error(
        "keys-exported",
        "/storage/encryption/keyDirectory",
        `keyDirectory ${showValue(spec.storage.encryption.keyDirectory)} ${within(keyDir, nfsRoot) ? "is inside" : "contains"} the NFS root ${showValue(spec.storage.nfs.root)}: the raw ZFS keys would be exported to every NFS client`,
        "mount the key stick outside the NFS root, e.g. keyDirectory: /keys",
      ),
    );
  }
  // Key files are named <fqdn>:<key>.key (what rc.d/zfskeys is pointed at), and msdosfs refuses
  // ':' in a name (sys/fs/msdosfs/msdosfs_conv.c: unix2dos[':'] is 0, so unix2dosfn() returns 0 and
  // the create fails with EINVAL): the keys could never be copied onto such a stick. msdosfs also
  // has no owners or modes: without -m, every local user could read the raw keys.
  if (spec.storage.encryption.keyFsType === "msdosfs") {
    out.push(
      error(
        "key-fs-msdosfs",
        "/storage/encryption/keyFsType",
        `keyFsType ${showValue("msdosfs")} cannot hold the key files: their names (<fqdn>:<key>.key) contain ':', which msdosfs refuses, and it has no file modes to keep the raw keys private`,
        "format the key stick with UFS (newfs -L F3SKEYS /dev/da0, then keyDevice: /dev/ufs/F3SKEYS) and write keyFsType: ufs, or leave keyFsType out",
      ),
    );
  }
  const under = (ds: string) => roots.some((r) => within(ds, r.dataset));
  spec.storage.replication.datasets.forEach((d, i) => {
    if (!under(d.name)) {
      out.push(
        error(
          "not-encrypted",
          `/storage/replication/datasets/${i}/name`,
          `dataset ${showValue(d.name)} is not under any storage.encryption.roots entry`,
          "zrepl sends raw encrypted streams (send.encrypted: true), which refuses unencrypted datasets: put it under an encryption root",
        ),
      );
    }
  });
  if (!under(spec.storage.nfs.dataset) && spec.storage.replication.datasets.some((d) => d.name === spec.storage.nfs.dataset) === false) {
    out.push(error("not-encrypted", "/storage/nfs/dataset", `NFS dataset ${showValue(spec.storage.nfs.dataset)} is not under any encryption root`, "put it under one of storage.encryption.roots"));
  }
}

/**
 * Each client has its own stunnel service on the VIP at tlsPort + slot and its own loopback address
 * 127.0.1.<slot>: two clients on one slot would share both, and a port past 65535 or on nfsd's or
 * rpcbind's own port cannot be listened on.
 */
function checkClientSlots(spec: Spec, out: Diagnostic[]) {
  const slots = clientSlots(spec.clients);
  const owner = new Map<number, number>();
  spec.clients.forEach((c, ci) => {
    const slot = slots[ci]!;
    const at = c.slot === undefined ? `/clients/${ci}` : `/clients/${ci}/slot`;
    const first = owner.get(slot);
    if (first !== undefined) {
      out.push(error("duplicate-slot", at, `slot ${slot} of ${showValue(c.name)} is also the slot of ${showValue(spec.clients[first]!.name)}`, "give each client its own slot (or leave slot out: the lowest free one is taken)"));
      return;
    }
    owner.set(slot, ci);
    const port = spec.storage.nfs.tlsPort + slot;
    const service = RESERVED_PORTS[port];
    if (port > 65535 || service) {
      out.push(error("port-conflict", at, `${showValue(c.name)}'s stunnel service would listen on port ${port} (storage.nfs.tlsPort ${spec.storage.nfs.tlsPort} + slot ${slot})${service ? `, ${service}'s own port` : ", past 65535"}`, "lower storage.nfs.tlsPort, or pin this client to another slot"));
    }
  });
  // Pinned slots are 1..250 by the schema: only a default slot can pass the last one.
  if (slots.some((s) => s > MAX_CLIENT_SLOT)) {
    out.push(error("too-many-clients", "/clients", `${spec.clients.length} clients, but each needs a slot from 1 to ${MAX_CLIENT_SLOT}`, `split the clients over more storage clusters, or pin slots within 1..${MAX_CLIENT_SLOT}`));
  }
}

function checkClients(spec: Spec, out: Diagnostic[]) {
  checkClientSlots(spec, out);
  if (spec.storage.nfs.rootAccess === undefined && spec.clients.some((c) => c.rootAccess === undefined)) {
    out.push(
      warning(
        "implicit-root-access",
        "/storage/nfs",
        "root on every client is root on the whole export (-maproot=root) because storage.nfs.rootAccess is not set",
        "write `rootAccess: root` to keep it knowingly (Kubernetes volumes that chown need it), or `rootAccess: squash` to map root to nobody",
      ),
    );
  }
  const root = spec.storage.nfs.root;
  spec.clients.forEach((c, ci) => {
    const mountpoints = new Map<string, number>();
    c.mounts.forEach((m, mi) => {
      const at = `/clients/${ci}/mounts/${mi}`;
      if (!within(m.export, root)) {
        out.push(error("export-outside-root", `${at}/export`, `export ${showValue(m.export)} is not under the NFS root ${showValue(root)}`, `NFSv4 serves only paths under the V4: root; write ${root} or a path below it`));
      }
      const mp = m.mountpoint.replace(/\/+$/, "") || "/";
      if (SYSTEM_DIRS.includes(mp) || SYSTEM_TREES.some((t) => t !== "/" && mp.startsWith(t + "/"))) {
        out.push(error("mountpoint-system", `${at}/mountpoint`, `mountpoint ${showValue(m.mountpoint)} would cover a system directory`, "mount NFS on a directory of its own, e.g. /data/nfs or /mnt/<name>"));
      }
      const unit = systemdEscapePath(m.mountpoint) + ".mount";
      if (Buffer.byteLength(unit) > NAME_MAX) {
        out.push(error("name-too-long", `${at}/mountpoint`, `mountpoint ${showValue(m.mountpoint)} gives a systemd unit name of ${Buffer.byteLength(unit)} bytes`, `unit file names are limited to ${NAME_MAX} bytes: use a shorter path (every character other than letters, digits, ":", "_" and "." takes four)`));
      }
      if (mountpoints.has(m.mountpoint)) {
        out.push(error("duplicate-mountpoint", `${at}/mountpoint`, `mountpoint ${showValue(m.mountpoint)} is used twice on ${c.name}`, "give each mount of a client its own mountpoint"));
      } else mountpoints.set(m.mountpoint, mi);
      const opts = m.options ?? [];
      opts.forEach((o, oi) => {
        const name = o.split("=")[0]!;
        if (name === "port" || name === "_netdev") {
          out.push(error("mount-option", `${at}/options/${oi}`, `option ${showValue(o)} is set by f3s-gen`, `remove it: port=<tlsPort> and _netdev are always added`));
        } else if ((name === "vers" || name === "nfsvers") && !/^4(\.[0-2])?$/.test(o.slice(name.length + 1))) {
          out.push(error("mount-option", `${at}/options/${oi}`, `option ${showValue(o)} asks for NFS before version 4, but the mounts are NFSv4 (Type=nfs4) through the tunnel`, "remove it, or ask for vers=4.2 (or 4.1)"));
        }
      });
      if (opts.includes("soft") && opts.includes("hard")) {
        out.push(error("mount-option", `${at}/options`, "options say both soft and hard", "keep one of them"));
      } else if (opts.includes("soft")) {
        out.push(warning("soft-mount", `${at}/options`, `soft mount of ${showValue(m.mountpoint)}: a timeout during a failover returns I/O errors to writers and can lose data`, "prefer hard mounts; the mount monitor repairs stale mounts after a failover"));
      }
    });
    for (const key of ["kubernetesNodeName", "kubeconfig"] as const) {
      if (c[key] !== undefined && !c.restartStuckPods) out.push(warning("unused-key", `/clients/${ci}/${key}`, `${key} is only used with restartStuckPods: true`, "remove it or set restartStuckPods: true"));
    }
  });
}

/** Names f3s-gen derives from the spec must fit the limits of the systems that use them. */
function checkDerivedNames(spec: Spec, out: Diagnostic[]) {
  const { storage, domain } = spec;
  if (storage.interface.length > IFNAME_MAX) {
    out.push(error("name-too-long", "/storage/interface", `interface name ${showValue(storage.interface)} has ${storage.interface.length} characters`, `FreeBSD interface names have at most ${IFNAME_MAX} characters (IFNAMSIZ)`));
  }
  const hosts: [string, string][] = [
    [storage.vip.hostname, "/storage/vip/hostname"],
    ...storage.nodes.map((n, i) => [n.name, `/storage/nodes/${i}/name`] as [string, string]),
    ...spec.clients.map((c, i) => [c.name, `/clients/${i}/name`] as [string, string]),
    ...(spec.members ?? []).map((m, i) => [m.name, `/members/${i}/name`] as [string, string]),
  ];
  for (const [name, pointer] of hosts) {
    const fqdn = `${name}.${domain}`;
    if (fqdn.length > FQDN_MAX) {
      out.push(error("name-too-long", pointer, `${showValue(name)}.<domain> has ${fqdn.length} characters`, `a fully qualified name has at most ${FQDN_MAX}: shorten the name or the domain`));
    }
  }
  // Key files are <fqdn>:<key>.key in one directory (and written under a temporary name first).
  const freebsd = [...storage.nodes.map((n) => n.name), ...(spec.members ?? []).map((m) => m.name)];
  const longest = freebsd.reduce((a, b) => (b.length > a.length ? b : a), "");
  storage.encryption.roots.forEach((r, i) => {
    const file = `${longest}.${domain}:${r.key}.key`;
    if (Buffer.byteLength(file) + TEMP_SUFFIX > NAME_MAX) {
      out.push(error("name-too-long", `/storage/encryption/roots/${i}/key`, `the key file name ${showValue(file)} has ${Buffer.byteLength(file)} bytes`, `file names are limited to ${NAME_MAX} bytes (f3s-gen needs ${TEMP_SUFFIX} more for a temporary name): shorten the key name, the host names or the domain`));
    }
  });
  const primary = storage.nodes.find((n) => n.role === "primary")?.name ?? "";
  storage.replication.datasets.forEach((d, i) => {
    const received = `${storage.replication.sinkRoot}/${primary}/${d.name}`;
    if (received.length > ZFS_NAME_MAX) {
      out.push(error("name-too-long", `/storage/replication/datasets/${i}/name`, `the standby receives it as ${showValue(received)}, ${received.length} characters`, `ZFS dataset names have at most ${ZFS_NAME_MAX}: shorten sinkRoot, the primary's name or the dataset`));
    }
  });
}
