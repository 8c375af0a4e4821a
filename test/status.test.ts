// f3s-status on every host type, for healthy, degraded and broken states, run under dash (storage,
// member) or bash (client) against the stand-ins of test/stubs; its metrics checked by Prometheus'
// own `promtool check metrics`; the canary and the repair record that feed it.
import { describe, expect, it, beforeAll } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildCase, extract, hasTool, tempDir, type Built } from "./support.js";
import { Sandbox, carpInterface, loopbackOf } from "./script-harness.js";
import { packageRoot } from "../src/paths.js";

const ready = hasTool("dash", ["-c", "true"]);
const promtool = hasTool("promtool", ["--version"]);

let example: Built;
let exportDatasets: Built;
beforeAll(async () => {
  [example, exportDatasets] = await Promise.all([buildCase("example"), buildCase("export-datasets")]);
});

const now = () => Math.floor(Date.now() / 1000);
const snapshots = (dataset: string, count: number, newestAge: number) =>
  Array.from({ length: count }, (_, i) => `${dataset}@zrepl_${i}\t${now() - newestAge - (count - 1 - i) * 60}`).join("\n") + "\n";

interface Host {
  sb: Sandbox;
  root: string;
  status(args?: string[]): { code: number; stdout: string; stderr: string };
}

const RELEASE = "0123456789abcdef";

function host(name: string, built = example): Host {
  const sb = new Sandbox();
  const root = extract(join(built.outDir, `${name}.tar.gz`));
  const textfiles = join(sb.dir, "textfile");
  const shell = readFileSync(join(root, "usr/local/sbin/f3s-status"), "utf8").startsWith("#!/bin/bash") ? "bash" : "dash";
  const vars: Record<string, string> = { ROOT: root, TEXTFILE_DIR: textfiles };
  if (name.startsWith("f") && name !== "f2") vars.CARP = sb.script(join(root, "usr/local/bin/carp"));
  const script = sb.script(join(root, "usr/local/sbin/f3s-status"), vars);
  // What f3s-activate records: the release activated, and the one staged.
  const state = join(root, shell === "bash" ? "var/lib/f3s" : "var/db/f3s");
  mkdirSync(state, { recursive: true });
  writeFileSync(join(state, "current"), `${RELEASE}\n`);
  writeFileSync(join(state, "staged"), `${RELEASE}\n`);
  return { sb, root, status: (args = []) => sb.run(shell, script, args) };
}

/** A storage node as it should be: `state` the CARP state, everything else in order. */
function storage(name: "f0" | "f1", state: "MASTER" | "BACKUP", built = example): Host {
  const h = host(name, built);
  h.sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, state));
  h.sb.set("if/lo0", loopbackOf(h.root));
  const services = state === "MASTER" ? ["rpcbind", "nfsuserd", "mountd", "nfsd", "stunnel", "zrepl"] : ["rpcbind", "zrepl"];
  for (const s of services) h.sb.set(`running/${s}`);
  // sockstat -4 -l -P tcp: the MASTER's stunnel listens on every client's service.
  if (state === "MASTER") h.sb.set("sockstat", listening(example.result.checked.model!.clients.map((c) => c.tunnelPort)));
  h.sb.dataset("zdata/enc");
  h.sb.dataset("zroot/bhyve");
  const nfs = name === "f0" ? "zdata/enc/nfsdata" : "zdata/sink/f0/zdata/enc/nfsdata";
  h.sb.dataset(nfs, { mounted: "yes", readonly: name === "f0" ? "off" : "on" });
  h.sb.set(`zfs/${nfs.replace(/\//g, "%")}/snapshots`, snapshots(nfs, 10, 30));
  const bhyve = name === "f0" ? "zroot/bhyve/fedora" : "zdata/sink/f0/zroot/bhyve/fedora";
  h.sb.dataset(bhyve);
  h.sb.set(`zfs/${bhyve.replace(/\//g, "%")}/snapshots`, snapshots(bhyve, 10, 300));
  // mount -p (fstab-format): the NFS dataset on the NFS root, the workers' export a directory of it.
  h.sb.set("mounts", `zroot/ROOT/default / zfs rw 0 0\n${nfs} /data/nfs zfs rw,nfsv4acls 0 0\n`);
  mkdirSync(join(h.root, "data/nfs"), { recursive: true });
  writeFileSync(join(h.root, "data/nfs/nfs.LIVE_CHECK"), `${now() - (name === "f0" ? 20 : 70)}\n`);
  return h;
}

function client(name: "r0" | "earth"): Host {
  const h = host(name);
  const mountpoint = name === "r0" ? "/data/nfs/k3svolumes" : "/data/nfs";
  const unit = name === "r0" ? "data-nfs-k3svolumes.mount" : "data-nfs.mount";
  for (const u of ["stunnel.service", unit, "nfs-mount-monitor.timer", "f3s-metrics.timer"]) h.sb.set(`active/${u}`);
  h.sb.set(`mounted/${mountpoint.replace(/\//g, "%")}`);
  return h;
}

/** sockstat lines for stunnel listening on the example's VIP at these ports. */
const listening = (ports: number[]) => ports.map((p, i) => `stunnel  stunnel    4242  ${i + 3} tcp4   192.168.1.138:${p}    *:*\n`).join("");

const levels = (stdout: string) => JSON.parse(stdout).checks.map((c: { level: string; check: string }) => `${c.level} ${c.check}`);

describe.skipIf(!ready)("f3s-status: storage nodes", () => {
  it("a healthy primary (MASTER): exit 0, every check ok", () => {
    const h = storage("f0", "MASTER");
    const r = h.status();
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(`f0 (storage, primary, release ${RELEASE}): healthy`);
    expect(r.stdout).toMatch(/ok +snapshots +zdata\/enc\/nfsdata: 10 snapshots, the newest 30s old/);
    const json = JSON.parse(h.status(["--json"]).stdout);
    expect(json).toMatchObject({ host: "f0", role: "storage, primary", release: RELEASE, staged: RELEASE, status: "healthy" });
    expect(json.checks.every((c: { level: string }) => c.level === "ok")).toBe(true);
  });

  it("a healthy standby (BACKUP) reports the replication lag from the canary", () => {
    const h = storage("f1", "BACKUP");
    const r = h.status();
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/ok +replication +the replica is 7\ds behind/);
    expect(h.status(["--prometheus"]).stdout).toMatch(/^f3s_replication_lag_seconds 7\d$/m);
  });

  it.each([
    ["the primary is BACKUP with failback blocked", (h: Host) => { h.sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, "BACKUP")); for (const s of ["nfsuserd", "mountd", "nfsd", "stunnel"]) h.sb.set(`running/${s}`, ""); writeFileSync(join(h.root, "data/nfs/nfs.NO_AUTO_FAILBACK"), ""); }, "degraded carp"],
    ["snapshots pile up (standby away, not_replicated keeps them)", (h: Host) => h.sb.set("zfs/zdata%enc%nfsdata/snapshots", snapshots("zdata/enc/nfsdata", 31, 30)), "degraded snapshots"],
    ["the canary is not being written", (h: Host) => writeFileSync(join(h.root, "data/nfs/nfs.LIVE_CHECK"), `${now() - 900}\n`), "degraded canary"],
  ])("degraded (exit 1) when %s", (_what, spoil, expected) => {
    const h = storage("f0", "MASTER");
    spoil(h);
    const r = h.status(["--json"]);
    expect(r.code, r.stdout).toBe(1);
    expect(levels(r.stdout)).toContain(expected);
  });

  it.each([
    ["MASTER without nfsd", (h: Host) => spawnSync("rm", [join(h.sb.state, "running/nfsd")]), "broken services"],
    ["an encryption key is not loaded", (h: Host) => h.sb.set("zfs/zroot%bhyve/keystatus", "unavailable\n"), "broken keys"],
    ["the NFS dataset is not mounted", (h: Host) => h.sb.set("zfs/zdata%enc%nfsdata/mounted", "no\n"), "broken nfs"],
    ["CARP has no VIP", (h: Host) => h.sb.set("if/re0", "re0: flags=8843<UP> mtu 1500\n"), "broken carp"],
    ["a client's source address is gone from lo0", (h: Host) => h.sb.set("if/lo0", h.sb.read("if/lo0").replace(/^\tinet 127\.0\.1\.2 .*\n/m, "")), "broken clients"],
  ])("broken (exit 2) when %s", (_what, spoil, expected) => {
    const h = storage("f0", "MASTER");
    spoil(h);
    const r = h.status(["--json"]);
    expect(r.code, r.stdout).toBe(2);
    expect(levels(r.stdout)).toContain(expected);
  });

  it("names the client whose way to nfsd is incomplete, and gives a metric per client", () => {
    const h = storage("f0", "MASTER");
    h.sb.set("if/lo0", h.sb.read("if/lo0").replace(/^\tinet 127\.0\.1\.2 .*\n/m, ""));
    const r = h.status(["--json"]);
    const json = JSON.parse(r.stdout);
    expect(json.checks.find((c: { check: string }) => c.check === "clients").message).toBe("r1: no 127.0.1.2 on lo0 (f3s-activate adds addresses and lines, and restarts stunnel for new services)");
    h.status(["--textfile"]);
    const metrics = readFileSync(join(h.sb.dir, "textfile", "f3s.prom"), "utf8");
    expect(metrics).toMatch(/^f3s_client_path_ready\{[^}]*client="r1"[^}]*\} 0$/m);
    expect(metrics).toMatch(/^f3s_client_path_ready\{[^}]*client="earth"[^}]*\} 1$/m);
  });

  it("names a client whose service stunnel does not listen on (a stunnel still running an older configuration)", () => {
    const h = storage("f0", "MASTER");
    const ports = example.result.checked.model!.clients.map((c) => c.tunnelPort);
    h.sb.set("sockstat", listening(ports.slice(0, -1)) + "root     sshd       812   4  tcp4   *:22                  *:*\n");
    const r = h.status(["--json"]);
    expect(r.code, r.stdout).toBe(2);
    const clients = JSON.parse(r.stdout).checks.find((c: { check: string }) => c.check === "clients");
    expect(clients.message).toBe(`earth: no service on 192.168.1.138:${ports.at(-1)} (f3s-activate adds addresses and lines, and restarts stunnel for new services)`);
    expect(h.status(["--prometheus"]).stdout).toMatch(/^f3s_client_path_ready\{[^}]*client="earth"[^}]*\} 0$/m);
    // Not listening at all is the services check's to say (stunnel stopped): no claim per client.
    h.sb.set("sockstat", "");
    expect(JSON.parse(h.status(["--json"]).stdout).checks.find((c: { check: string }) => c.check === "clients").level).toBe("ok");
  });

  it("says which certificates reach a whole file system beyond their exports, with a metric per client, without failing the host", () => {
    const h = storage("f0", "MASTER");
    const nfsFs = h.sb.read("mounts");
    const wide = h.status(["--json"]);
    expect(wide.code, wide.stdout).toBe(0);
    const clients = JSON.parse(wide.stdout).checks.find((c: { check: string }) => c.check === "clients");
    expect(clients.level).toBe("ok");
    expect(clients.message).toContain("; r0 reaches all of /data/nfs; r1 reaches all of /data/nfs; r2 reaches all of /data/nfs (exports that are directories");
    const metrics = h.status(["--prometheus"]).stdout;
    expect(metrics).toMatch(/^f3s_client_confined\{[^}]*client="r0"[^}]*\} 0$/m);
    expect(metrics).toMatch(/^f3s_client_confined\{[^}]*client="earth"[^}]*\} 1$/m);
    // The workers' export a dataset of its own: every client confined.
    h.sb.set("mounts", nfsFs + "zdata/enc/nfsdata/k3svolumes /data/nfs/k3svolumes zfs rw,nfsv4acls 0 0\n");
    expect(JSON.parse(h.status(["--json"]).stdout).checks.find((c: { check: string }) => c.check === "clients").message).toBe("every client has its source address on lo0 and its exports line");
    expect(h.status(["--prometheus"]).stdout.match(/^f3s_client_confined\{.*\} 1$/gm)).toHaveLength(4);
    // The NFS dataset not mounted: the nfs check says so, and nothing is claimed about reach.
    h.sb.set("mounts", "zroot/ROOT/default / zfs rw 0 0\n");
    expect(h.status(["--prometheus"]).stdout).not.toContain("f3s_client_confined");
  });

  it("export datasets: one not mounted degrades the node, with a metric; the standby waits for one not received", () => {
    const h = storage("f0", "MASTER", exportDatasets);
    const nfsCheck = () => JSON.parse(h.status(["--json"]).stdout).checks.find((c: { check: string }) => c.check === "nfs");
    const unmounted = () => /^f3s_nfs_export_datasets_unmounted(\{[^}]*\})? (\d+)$/m.exec(h.status(["--prometheus"]).stdout)?.[2];
    for (const ds of ["backup", "backup/earth", "k3svolumes"]) h.sb.dataset(`zdata/enc/nfsdata/${ds}`, { mounted: "yes" });
    expect(nfsCheck().level).toBe("ok");
    expect(unmounted()).toBe("0");
    h.sb.set("zfs/zdata%enc%nfsdata%k3svolumes/mounted", "no\n");
    h.sb.remove("zfs/zdata%enc%nfsdata%backup%earth");
    expect(nfsCheck()).toMatchObject({ level: "degraded", message: "the export datasets of /data/nfs/backup/earth /data/nfs/k3svolumes are not mounted: their clients see a directory of zdata/enc/nfsdata (f3s-activate mounts them)" });
    expect(unmounted()).toBe("2");
    // The standby before their first replication: nothing to mount yet.
    const standby = storage("f1", "BACKUP", exportDatasets);
    expect(JSON.parse(standby.status(["--json"]).stdout).checks.find((c: { check: string }) => c.check === "nfs").level).toBe("ok");
    standby.sb.dataset("zdata/sink/f0/zdata/enc/nfsdata/k3svolumes");
    expect(JSON.parse(standby.status(["--json"]).stdout).checks.find((c: { check: string }) => c.check === "nfs").level).toBe("degraded");
  });

  it("each dataset's newest snapshot is held to its own interval: the 10-minute dataset may be 1000 s old, not 2000", () => {
    // zroot/bhyve/fedora snapshots every 10m: its limit is 2 x 600 s + 300 s, not the NFS dataset's 600 s.
    const fine = storage("f0", "MASTER");
    fine.sb.set("zfs/zroot%bhyve%fedora/snapshots", snapshots("zroot/bhyve/fedora", 10, 1000));
    expect(fine.status().code, fine.status().stdout).toBe(0);
    const late = storage("f0", "MASTER");
    late.sb.set("zfs/zroot%bhyve%fedora/snapshots", snapshots("zroot/bhyve/fedora", 10, 2000));
    const r = late.status();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/DEGRADED +snapshots +zroot\/bhyve\/fedora: the newest snapshot is 200\ds old \(more than 1500s\)/);
    // The NFS dataset keeps the replication lag limit.
    const nfs = storage("f0", "MASTER");
    nfs.sb.set("zfs/zdata%enc%nfsdata/snapshots", snapshots("zdata/enc/nfsdata", 10, 700));
    expect(nfs.status().stdout).toMatch(/DEGRADED +snapshots +zdata\/enc\/nfsdata: the newest snapshot is 70\ds old \(more than 600s\)/);
  });

  it("the standby: degraded when the replica lags or is writable, broken when it is not mounted", () => {
    const lagging = storage("f1", "BACKUP");
    writeFileSync(join(lagging.root, "data/nfs/nfs.LIVE_CHECK"), `${now() - 3600}\n`);
    expect(lagging.status().code).toBe(1);
    expect(lagging.status().stdout).toMatch(/DEGRADED +replication +the replica is 3\d{3}s behind \(more than 600s\)/);
    const writable = storage("f1", "BACKUP");
    writable.sb.set("zfs/zdata%sink%f0%zdata%enc%nfsdata/readonly", "off\n");
    expect(levels(writable.status(["--json"]).stdout)).toContain("degraded nfs");
    const unmounted = storage("f1", "BACKUP");
    unmounted.sb.set("zfs/zdata%sink%f0%zdata%enc%nfsdata/mounted", "no\n");
    expect(unmounted.status().code).toBe(2);
  });
});

describe.skipIf(!ready)("f3s-status: clients and members", () => {
  it("a healthy client; its repairs come from the monitor's record", () => {
    const h = client("r0");
    mkdirSync(join(h.root, "var/lib/f3s/repairs"), { recursive: true });
    writeFileSync(join(h.root, "var/lib/f3s/repairs/data-nfs-k3svolumes.mount.count"), "3\n");
    writeFileSync(join(h.root, "var/lib/f3s/repairs/data-nfs-k3svolumes.mount.last"), `${now() - 100}\n`);
    const r = h.status();
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/ok +mount +\/data\/nfs\/k3svolumes answers \(3 repair\(s\), the last 10\ds ago\)/);
    expect(h.status(["--prometheus"]).stdout).toMatch(/^f3s_mount_repairs_total\{mountpoint="\/data\/nfs\/k3svolumes"\} 3$/m);
  });

  it("degraded when the monitor does not run; broken when a mount is stale or the tunnel is down", () => {
    const noMonitor = client("r0");
    spawnSync("rm", [join(noMonitor.sb.state, "active/nfs-mount-monitor.timer")]);
    expect(noMonitor.status().code).toBe(1);
    const stale = client("r0");
    stale.sb.set("stale/%data%nfs%k3svolumes");
    const r = stale.status(["--json"]);
    expect(r.code).toBe(2);
    expect(levels(r.stdout)).toContain("broken mount");
    const noTunnel = client("earth");
    spawnSync("rm", [join(noTunnel.sb.state, "active/stunnel.service")]);
    expect(levels(noTunnel.status(["--json"]).stdout)).toContain("broken tunnel");
  });

  it("a member: healthy with its hosts line, broken without", () => {
    const h = host("f2");
    mkdirSync(join(h.root, "etc"), { recursive: true });
    writeFileSync(join(h.root, "etc/hosts"), "127.0.0.1 localhost\n");
    expect(h.status().code).toBe(2);
    writeFileSync(join(h.root, "etc/hosts"), "127.0.0.1 localhost\n" + readFileSync(join(h.root, "usr/local/share/f3s/hosts"), "utf8"));
    expect(h.status().code).toBe(0);
  });

  it("every host type names the release it runs (text, --json, f3s_release_info), and one staged but not activated", () => {
    for (const h of [storage("f0", "MASTER"), storage("f1", "BACKUP"), client("r0"), host("f2")]) {
      expect(h.status().stdout.split("\n")[0]).toContain(`release ${RELEASE})`);
      expect(JSON.parse(h.status(["--json"]).stdout)).toMatchObject({ release: RELEASE, staged: RELEASE });
      expect(h.status(["--prometheus"]).stdout).toMatch(new RegExp(`^f3s_release_info\\{release="${RELEASE}",staged="${RELEASE}"\\} 1$`, "m"));
      const state = join(h.root, existsSync(join(h.root, "var/lib/f3s")) ? "var/lib/f3s" : "var/db/f3s");
      writeFileSync(join(state, "staged"), "fedcba9876543210\n");
      expect(h.status().stdout).toContain("release fedcba9876543210 is staged, not activated");
      // Whatever the files hold, only a release id reaches the output.
      writeFileSync(join(state, "current"), 'x"} 1\nevil 1\n');
      expect(h.status(["--prometheus"]).stdout).toMatch(/^f3s_release_info\{release="none",staged="fedcba9876543210"\} 1$/m);
    }
  });

  it("--help exits 0; anything else is a usage error (64)", () => {
    const h = client("r0");
    expect(h.status(["--help"]).stdout).toMatch(/^Usage: f3s-status/);
    expect(h.status(["--bogus"]).code).toBe(64);
  });
});

describe.skipIf(!ready)("metrics for node_exporter's textfile collector", () => {
  const cases: [string, () => Host][] = [
    ["primary", () => storage("f0", "MASTER")],
    ["standby", () => storage("f1", "BACKUP")],
    ["broken primary", () => { const h = storage("f0", "MASTER"); h.sb.set("zfs/zroot%bhyve/keystatus", "unavailable\n"); return h; }],
    ["client", () => client("r0")],
    ["client with DNAT", () => client("earth")],
    ["member", () => host("f2")],
    ["primary with an export dataset not mounted", () => { const h = storage("f0", "MASTER", exportDatasets); h.sb.dataset("zdata/enc/nfsdata/k3svolumes"); return h; }],
  ];

  it.skipIf(!promtool).each(cases)("%s: promtool check metrics accepts them", (_name, make) => {
    const metrics = make().status(["--prometheus"]).stdout;
    expect(metrics).toMatch(/^# TYPE f3s_status gauge$/m);
    const r = spawnSync("promtool", ["check", "metrics"], { input: metrics, encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr + metrics).toBe(0);
    expect(r.stdout + r.stderr).toBe("");
  });

  it.skipIf(!promtool)("promtool would reject a broken exposition (the check can fail)", () => {
    const r = spawnSync("promtool", ["check", "metrics"], { input: "f3s_mount_repairs gauge\nfoo{x=\"1\" 1\n", encoding: "utf8" });
    expect(r.status).not.toBe(0);
  });

  it.skipIf(!promtool)("the README's alert rules (examples/f3s-alerts.yml) pass promtool check rules", () => {
    const r = spawnSync("promtool", ["check", "rules", join(packageRoot, "examples/f3s-alerts.yml")], { encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: 9 rules found/);
    const readme = readFileSync(join(packageRoot, "docs/health-and-metrics.md"), "utf8");
    expect(readme).toContain(readFileSync(join(packageRoot, "examples/f3s-alerts.yml"), "utf8").split("\n").find((l) => l.includes("F3sNotExactlyOneMaster"))!.trim());
  });

  it("--textfile writes f3s.prom atomically and prints nothing (cron would mail it)", () => {
    const h = storage("f0", "MASTER");
    const r = h.status(["--textfile"]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    const dir = join(h.sb.dir, "textfile");
    expect(readdirSync(dir)).toEqual(["f3s.prom"]);
    expect(readFileSync(join(dir, "f3s.prom"), "utf8")).toMatch(/^f3s_carp_master 1$/m);
  });

  it("is scheduled: cron on the storage nodes (with the canary on the primary only), a timer on clients", () => {
    const f0 = extract(join(example.outDir, "f0.tar.gz"));
    const f1 = extract(join(example.outDir, "f1.tar.gz"));
    expect(readFileSync(join(f0, "usr/local/etc/cron.d/f3s-monitoring"), "utf8")).toMatch(/^\* \* \* \* \* root \/usr\/local\/sbin\/f3s-canary/m);
    expect(readFileSync(join(f1, "usr/local/etc/cron.d/f3s-monitoring"), "utf8")).not.toMatch(/f3s-canary/);
    const r0 = extract(join(example.outDir, "r0.tar.gz"));
    expect(readFileSync(join(r0, "etc/systemd/system/f3s-metrics.timer"), "utf8")).toMatch(/OnUnitActiveSec=30s/);
    expect(readFileSync(join(r0, "usr/local/libexec/f3s/activate"), "utf8")).toMatch(/f3s-metrics\.timer/);
  });
});

describe.skipIf(!ready)("the canary", () => {
  it("is written only where the real dataset is mounted (its marker exists)", () => {
    const sb = new Sandbox();
    const root = extract(join(example.outDir, "f0.tar.gz"));
    const canary = sb.script(join(root, "usr/local/sbin/f3s-canary"), { ROOT: root });
    mkdirSync(join(root, "data/nfs"), { recursive: true });
    expect(sb.run("dash", canary).code).toBe(0);
    expect(readdirSync(join(root, "data/nfs"))).toEqual([]);
    writeFileSync(join(root, "data/nfs/nfs.DO_NOT_REMOVE"), "");
    sb.run("dash", canary);
    const written = Number(readFileSync(join(root, "data/nfs/nfs.LIVE_CHECK"), "utf8"));
    expect(Math.abs(written - now())).toBeLessThan(5);
  });

  it("the monitor records each repair for f3s-status", () => {
    const sb = new Sandbox();
    const root = extract(join(example.outDir, "r0.tar.gz"));
    sb.set("mounted/%data%nfs%k3svolumes");
    sb.set("units/data-nfs-k3svolumes.mount", "/data/nfs/k3svolumes");
    sb.set("stale/%data%nfs%k3svolumes");
    const repairs = tempDir();
    const script = sb.script(join(root, "usr/local/bin/check-nfs-mount.sh"), { STATE_DIR: join(sb.dir, "monitor"), REPAIRS_DIR: repairs });
    // A mount is repaired when it fails two checks in a row.
    sb.run("bash", script);
    sb.run("bash", script);
    sb.set("stale/%data%nfs%k3svolumes");
    sb.run("bash", script);
    sb.run("bash", script);
    expect(readFileSync(join(repairs, "data-nfs-k3svolumes.mount.count"), "utf8").trim()).toBe("2");
  });
});
