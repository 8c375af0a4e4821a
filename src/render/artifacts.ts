// The artifact registry: one line per output file. A new output file is a template plus one line
// here. `path` is where the file lands on the host, relative to / (the tarball's entry name).
import type { Role } from "../spec/model.js";
import type { HostContext } from "./context.js";

export const SCRIPT = 0o755;
export const PRIVATE = 0o600;
export const PUBLIC = 0o644;

export interface Artifact {
  /** Template file under templates/. */
  template: string;
  path: string | ((ctx: HostContext, item: any) => string);
  mode: number;
  roles: readonly Role[];
  /** Further condition on the host (e.g. primary only). */
  when?: (ctx: HostContext) => boolean;
  /** One file per item (e.g. one mount unit per mount); the template sees it as `item`. */
  each?: (ctx: HostContext) => unknown[];
}

const ALL: Role[] = ["storage", "client", "member"];
const STORAGE: Role[] = ["storage"];
const CLIENT: Role[] = ["client"];

const primaryWithFailback = (c: HostContext) => c.storage!.failback;

export const MANIFEST_PATH = "usr/local/share/f3s/MANIFEST";
/** The command a deployment runs after extracting; the only file extraction puts in place. */
export const ACTIVATE_PATH = "usr/local/sbin/f3s-activate";
/** Each release's own activation, which f3s-activate runs from the release's directory. */
export const ACTIVATION_SCRIPT = "usr/local/libexec/f3s/activate";

/** A client's mount monitor keeps its lock and its per-mount state here; activation takes the same lock. */
export const MONITOR_STATE_DIR = "/run/f3s-nfs-mount-monitor";

/** Where each client's stunnel allow-list lives on the storage nodes (relative to /). */
export const ALLOWED_CLIENTS_DIR = "usr/local/etc/stunnel/ca/clients";

export const MANIFEST_TEMPLATE = "common/MANIFEST.hbs";

/**
 * Files whose one secret is short (the CARP password in netif): everything else in them is known,
 * so their hash would give the secret away by trying passwords. The MANIFEST, show and diff never
 * print a hash of them; show --cat and diff mask the secret itself.
 */
export const UNHASHED_FILES: ReadonlySet<string> = new Set(["etc/rc.conf.d/netif"]);

export const artifacts: readonly Artifact[] = [
  // Every host
  { template: "common/hosts.hbs", path: "usr/local/share/f3s/hosts", mode: PUBLIC, roles: ALL },
  // The command that activates a staged release, and each role's activation, which it runs from the release.
  { template: "common/f3s-activate.sh.hbs", path: ACTIVATE_PATH, mode: SCRIPT, roles: ALL },
  { template: "storage/f3s-activate.sh.hbs", path: ACTIVATION_SCRIPT, mode: SCRIPT, roles: STORAGE },
  { template: "client/f3s-activate.bash.hbs", path: ACTIVATION_SCRIPT, mode: SCRIPT, roles: CLIENT },
  { template: "member/f3s-activate.sh.hbs", path: ACTIVATION_SCRIPT, mode: SCRIPT, roles: ["member"] },
  // Health: f3s-status on every host, and its metrics for node_exporter's textfile collector
  { template: "storage/f3s-status.sh.hbs", path: "usr/local/sbin/f3s-status", mode: SCRIPT, roles: STORAGE },
  { template: "client/f3s-status.bash.hbs", path: "usr/local/sbin/f3s-status", mode: SCRIPT, roles: CLIENT },
  { template: "member/f3s-status.sh.hbs", path: "usr/local/sbin/f3s-status", mode: SCRIPT, roles: ["member"] },
  { template: "storage/cron.d/f3s-monitoring.hbs", path: "usr/local/etc/cron.d/f3s-monitoring", mode: PUBLIC, roles: STORAGE },
  { template: "storage/f3s-canary.sh.hbs", path: "usr/local/sbin/f3s-canary", mode: SCRIPT, roles: STORAGE, when: (c) => c.storage!.isPrimary },
  { template: "client/f3s-metrics.service.hbs", path: "etc/systemd/system/f3s-metrics.service", mode: PUBLIC, roles: CLIENT },
  { template: "client/f3s-metrics.timer.hbs", path: "etc/systemd/system/f3s-metrics.timer", mode: PUBLIC, roles: CLIENT },

  // Storage nodes: rc.conf.d, one file per rc script that reads it
  // netif carries the CARP password.
  { template: "storage/rc.conf.d/netif.hbs", path: "etc/rc.conf.d/netif", mode: PRIVATE, roles: STORAGE },
  { template: "storage/rc.conf.d/rpcbind.hbs", path: "etc/rc.conf.d/rpcbind", mode: PUBLIC, roles: STORAGE },
  { template: "storage/rc.conf.d/nfsd.hbs", path: "etc/rc.conf.d/nfsd", mode: PUBLIC, roles: STORAGE },
  { template: "storage/rc.conf.d/mountd.hbs", path: "etc/rc.conf.d/mountd", mode: PUBLIC, roles: STORAGE },
  { template: "storage/rc.conf.d/nfsuserd.hbs", path: "etc/rc.conf.d/nfsuserd", mode: PUBLIC, roles: STORAGE },
  { template: "storage/rc.conf.d/stunnel.hbs", path: "etc/rc.conf.d/stunnel", mode: PUBLIC, roles: STORAGE },
  { template: "storage/rc.conf.d/zrepl.hbs", path: "etc/rc.conf.d/zrepl", mode: PUBLIC, roles: STORAGE },
  { template: "storage/rc.conf.d/zfskeys.hbs", path: "etc/rc.conf.d/zfskeys", mode: PUBLIC, roles: STORAGE },
  { template: "storage/rc.conf.d/zfs.hbs", path: "etc/rc.conf.d/zfs", mode: PUBLIC, roles: STORAGE },
  { template: "storage/rc.conf.d/f3s_carp_sync.hbs", path: "etc/rc.conf.d/f3s_carp_sync", mode: PUBLIC, roles: STORAGE },
  { template: "storage/rc.d/f3s_carp_sync.hbs", path: "usr/local/etc/rc.d/f3s_carp_sync", mode: SCRIPT, roles: STORAGE },
  { template: "storage/sysctl.conf.hbs", path: "usr/local/share/f3s/sysctl.conf", mode: PUBLIC, roles: STORAGE },
  { template: "storage/loader.conf.d/carp.conf.hbs", path: "boot/loader.conf.d/carp.conf", mode: PUBLIC, roles: STORAGE },
  // CARP
  { template: "storage/devd/carp.conf.hbs", path: "usr/local/etc/devd/carp.conf", mode: PUBLIC, roles: STORAGE },
  { template: "storage/carpcontrol.sh.hbs", path: "usr/local/bin/carpcontrol.sh", mode: SCRIPT, roles: STORAGE },
  { template: "storage/carp.sh.hbs", path: "usr/local/bin/carp", mode: SCRIPT, roles: STORAGE },
  { template: "storage/carp-auto-failback.sh.hbs", path: "usr/local/bin/carp-auto-failback.sh", mode: SCRIPT, roles: STORAGE, when: primaryWithFailback },
  { template: "storage/cron.d/carp-auto-failback.hbs", path: "usr/local/etc/cron.d/carp-auto-failback", mode: PUBLIC, roles: STORAGE, when: primaryWithFailback },
  { template: "storage/newsyslog.conf.d/carp-auto-failback.conf.hbs", path: "usr/local/etc/newsyslog.conf.d/carp-auto-failback.conf", mode: PUBLIC, roles: STORAGE, when: primaryWithFailback },
  // NFS behind stunnel
  { template: "storage/exports.hbs", path: "etc/exports", mode: PUBLIC, roles: STORAGE },
  { template: "storage/stunnel/stunnel.conf.hbs", path: "usr/local/etc/stunnel/stunnel.conf", mode: PUBLIC, roles: STORAGE },
  { template: "storage/stunnel/server-cert.pem.hbs", path: "usr/local/etc/stunnel/server-cert.pem", mode: PUBLIC, roles: STORAGE },
  { template: "storage/stunnel/server-key.pem.hbs", path: "usr/local/etc/stunnel/server-key.pem", mode: PRIVATE, roles: STORAGE },
  { template: "common/ca-cert.pem.hbs", path: "usr/local/etc/stunnel/ca/ca-cert.pem", mode: PUBLIC, roles: STORAGE },
  // One allow-list per client: its stunnel service accepts that client's certificate and no other.
  { template: "storage/stunnel/allowed-client.pem.hbs", path: (_c, a) => `${ALLOWED_CLIENTS_DIR}/${a.name}.pem`, mode: PUBLIC, roles: STORAGE, each: (c) => c.tls.allowedClients! },
  // zrepl
  { template: "storage/zrepl/push.yml.hbs", path: "usr/local/etc/zrepl/zrepl.yml", mode: PUBLIC, roles: STORAGE, when: (c) => c.storage!.isPrimary },
  { template: "storage/zrepl/sink.yml.hbs", path: "usr/local/etc/zrepl/zrepl.yml", mode: PUBLIC, roles: STORAGE, when: (c) => c.storage!.isStandby },

  // Clients
  { template: "client/stunnel.conf.hbs", path: (c) => c.client!.platform.stunnelConf.slice(1), mode: PUBLIC, roles: CLIENT },
  { template: "client/f3s-stunnel.service.hbs", path: "etc/systemd/system/f3s-stunnel.service", mode: PUBLIC, roles: CLIENT, when: (c) => c.client!.platform.ownStunnelUnit },
  { template: "client/client-stunnel.pem.hbs", path: (c) => `etc/stunnel/${c.client!.name}-stunnel.pem`, mode: PRIVATE, roles: CLIENT },
  { template: "common/ca-cert.pem.hbs", path: "etc/stunnel/ca-cert.pem", mode: PUBLIC, roles: CLIENT },
  { template: "client/idmapd.conf.hbs", path: "etc/idmapd.conf", mode: PUBLIC, roles: CLIENT },
  { template: "client/sysctl-inotify.conf.hbs", path: "etc/sysctl.d/90-f3s-inotify.conf", mode: PUBLIC, roles: CLIENT },
  { template: "client/nfs.mount.hbs", path: (_c, m) => `etc/systemd/system/${m.unit}`, mode: PUBLIC, roles: CLIENT, each: (c) => c.client!.mounts },
  { template: "client/check-nfs-mount.sh.hbs", path: "usr/local/bin/check-nfs-mount.sh", mode: SCRIPT, roles: CLIENT },
  { template: "client/nfs-mount-monitor.service.hbs", path: "etc/systemd/system/nfs-mount-monitor.service", mode: PUBLIC, roles: CLIENT },
  { template: "client/nfs-mount-monitor.timer.hbs", path: "etc/systemd/system/nfs-mount-monitor.timer", mode: PUBLIC, roles: CLIENT },
  { template: "client/tunnel-guard.nft.hbs", path: "etc/f3s/tunnel-guard.nft", mode: PUBLIC, roles: CLIENT },
  { template: "client/f3s-tunnel-guard.service.hbs", path: "etc/systemd/system/f3s-tunnel-guard.service", mode: PUBLIC, roles: CLIENT },
  { template: "client/f3s-nfs-dnat.service.hbs", path: "etc/systemd/system/f3s-nfs-dnat.service", mode: PUBLIC, roles: CLIENT, when: (c) => c.client!.redirectNfsPort },
  { template: "client/f3s-nfs-dnat.sh.hbs", path: "usr/local/sbin/f3s-nfs-dnat", mode: SCRIPT, roles: CLIENT, when: (c) => c.client!.redirectNfsPort },
];
