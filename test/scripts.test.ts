// Behaviour of every generated script, run by the shell that runs it on the host (dash for
// FreeBSD's sh, bash for the Linux clients) against stand-ins for the system commands.
import { describe, expect, it, beforeAll } from "vitest";
import { existsSync, readFileSync, writeFileSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { buildCase, extract, extractRoot, hasTool, tempDir, type Built } from "./support.js";
import { Sandbox, carpInterface, plainInterface, mutating, stubsDir } from "./script-harness.js";

const ready = hasTool("dash", ["-c", "true"]) && hasTool("flock", ["--version"]);

let example: Built;
let other: Built;
let exportDatasets: Built;
const roots = new Map<string, string>();
beforeAll(async () => {
  [example, other, exportDatasets] = await Promise.all([buildCase("example"), buildCase("other"), buildCase("export-datasets")]);
  for (const h of ["f0", "f1", "f2", "r0", "earth"]) roots.set(h, extract(join(example.outDir, `${h}.tar.gz`)));
  for (const h of ["stor-a", "stor-b", "k8s-a"]) roots.set(h, extract(join(other.outDir, `${h}.tar.gz`)));
  // The same nodes with storage.nfs.exportDatasets (fixtures/valid/export-datasets).
  for (const h of ["f0", "f1"]) roots.set(`datasets-${h}`, extract(join(exportDatasets.outDir, `${h}.tar.gz`)));
});
const file = (host: string, rel: string) => join(roots.get(host)!, rel);

/**
 * carpcontrol.sh against the sandbox, on a node whose NFS dataset is mounted (its marker file is
 * there) unless `mounted` is false; its `carp` is the node's own, with the hand-over file in the sandbox.
 */
function carpcontrol(sb: Sandbox, host: string, mounted = true): string {
  const root = tempDir("f3s-node-");
  mkdirSync(join(root, "data/nfs"), { recursive: true });
  if (mounted) writeFileSync(join(root, "data/nfs/nfs.DO_NOT_REMOVE"), "");
  const carp = sb.script(file(host, "usr/local/bin/carp"), { HANDOVER_FILE: join(sb.dir, "handover"), SETTLE_SECONDS: "0" });
  return sb.script(file(host, "usr/local/bin/carpcontrol.sh"), { ROOT: root, CARP: carp, HANDOVER_FILE: join(sb.dir, "handover") });
}

describe.skipIf(!ready)("carp", () => {
  function setup(state = "MASTER") {
    const sb = new Sandbox();
    sb.set("if/lo0", plainInterface("lo0", "127.0.0.1"));
    sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, state));
    // Another CARP group on another interface must not confuse it.
    sb.set("if/em1", carpInterface("em1", "10.9.9.1", "10.9.9.9", 7, "BACKUP"));
    const carp = sb.script(file("f0", "usr/local/bin/carp"), { BLOCK_FILE: join(sb.dir, "block"), SETTLE_SECONDS: "0", HANDOVER_FILE: join(sb.dir, "handover") });
    return { sb, carp };
  }

  it("prints the state of the VIP's interface and vhid", () => {
    const { sb, carp } = setup();
    expect(sb.run("dash", carp)).toEqual({ code: 0, stdout: "CARP state on re0 (vhid 1): MASTER\n", stderr: "" });
  });

  it("`state` prints the bare word, even when auto-failback is disabled", () => {
    const { sb, carp } = setup("BACKUP");
    writeFileSync(join(sb.dir, "block"), "");
    expect(sb.run("dash", carp).stdout).toContain("WARNING: Auto-failback is DISABLED");
    expect(sb.run("dash", carp, ["state"]).stdout).toBe("BACKUP\n");
  });

  it("`backup` hands over with the highest advskew, `master` restores the node's own", () => {
    const { sb, carp } = setup("MASTER");
    const r = sb.run("dash", carp, ["backup"]);
    expect(r.code).toBe(0);
    // state backup alone re-arms this node's master-down timer (3 s) against the peer's 3.39 s.
    expect(sb.calls()).toContain("ifconfig re0 vhid 1 advskew 254 state backup");
    expect(r.stdout).toContain("CARP state on re0 (vhid 1): BACKUP");
    expect(sb.read("if/re0")).toMatch(/carp: BACKUP vhid 1 advbase 1 advskew 254/);
    expect(existsSync(join(sb.dir, "handover"))).toBe(true);
    sb.run("dash", carp, ["master"]);
    expect(sb.calls()).toContain("ifconfig re0 vhid 1 advskew 0 state master");
    expect(sb.read("if/re0")).toMatch(/carp: MASTER vhid 1 advbase 1 advskew 0/);
    expect(existsSync(join(sb.dir, "handover"))).toBe(false);
    expect(sb.run("dash", carp, ["state"]).stdout).toBe("MASTER\n");
  });

  it("the standby restores its own advskew (100) on `master`", () => {
    const sb = new Sandbox();
    sb.set("if/re0", carpInterface("re0", "192.168.1.131", "192.168.1.138", 1, "BACKUP"));
    const carp = sb.script(file("f1", "usr/local/bin/carp"), { SETTLE_SECONDS: "0", HANDOVER_FILE: join(sb.dir, "handover") });
    sb.run("dash", carp, ["master"]);
    expect(sb.calls()).toContain("ifconfig re0 vhid 1 advskew 100 state master");
  });

  it("`auto-failback enable|disable` manage the block file", () => {
    const { sb, carp } = setup();
    const block = join(sb.dir, "block");
    expect(sb.run("dash", carp, ["auto-failback", "disable"]).stdout).toContain("DISABLED");
    expect(existsSync(block)).toBe(true);
    expect(sb.run("dash", carp, ["auto-failback", "status"]).stdout).toBe("disabled\n");
    expect(sb.run("dash", carp, ["auto-failback", "enable"]).stdout).toContain("ENABLED");
    expect(existsSync(block)).toBe(false);
    expect(sb.run("dash", carp, ["auto-failback", "bogus"]).code).toBe(2);
  });

  it("fails clearly when no interface carries the VIP", () => {
    const sb = new Sandbox();
    sb.set("if/lo0", plainInterface("lo0", "127.0.0.1"));
    const r = sb.run("dash", sb.script(file("f0", "usr/local/bin/carp")), ["state"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no interface carries the CARP VIP 192.168.1.138");
  });

  it("finds another cluster's interface and vhid (igb0.42, vhid 42)", () => {
    const sb = new Sandbox();
    sb.set("if/igb0.42", carpInterface("igb0.42", "10.20.30.11", "10.20.31.250", 42, "BACKUP"));
    expect(sb.run("dash", sb.script(file("stor-a", "usr/local/bin/carp"), { SETTLE_SECONDS: "0" }), ["state"]).stdout).toBe("BACKUP\n");
  });
});

describe.skipIf(!ready)("carpcontrol.sh", () => {
  it("on MASTER (called as devd calls it) starts the NFS services and restarts stunnel, and logs", () => {
    const sb = new Sandbox();
    const r = sb.run("dash", carpcontrol(sb, "f0"), ["1@re0", "MASTER"]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(sb.calls().filter((c) => !c.endsWith(" status"))).toEqual([
      "service rpcbind start", "service nfsuserd start", "service mountd start", "service nfsd start", "service stunnel restart",
    ]);
    for (const s of ["rpcbind", "nfsuserd", "mountd", "nfsd", "stunnel"]) expect(sb.has(`running/${s}`), s).toBe(true);
    expect(sb.read("syslog")).toMatch(/carpcontrol: CARP 1@re0 is MASTER: starting NFS and stunnel/);
    expect(sb.read("syslog")).toMatch(/carpcontrol: service stunnel restart: ok/);
  });

  it("on MASTER with export datasets: mounts the ones the standby received since its last activation before NFS serves", () => {
    const sb = new Sandbox();
    const received = "zdata/sink/f0/zdata/enc/nfsdata";
    // k3svolumes: received raw (its own encryption root, key not loaded), its directory there;
    // backup: mounted already; backup/earth: its directory not replicated yet; nothing else exists.
    sb.dataset(`${received}/k3svolumes`, { keystatus: "unavailable", encryptionroot: `${received}/k3svolumes` });
    sb.dataset(`${received}/backup`, { mounted: "yes", encryptionroot: received });
    sb.dataset(`${received}/backup/earth`, { encryptionroot: received });
    const script = carpcontrol(sb, "datasets-f1");
    const root = /^ROOT='([^']*)'$/m.exec(readFileSync(script, "utf8"))![1]!;
    mkdirSync(join(root, "data/nfs/k3svolumes"));
    expect(sb.run("dash", script, ["1@re0", "MASTER"]).code).toBe(0);
    const calls = sb.calls().filter((c) => !c.endsWith(" status"));
    expect(calls.slice(0, 2)).toEqual([`zfs load-key -L file:///keys/f0.lan.buetow.org:zdata.key ${received}/k3svolumes`, `zfs mount ${received}/k3svolumes`]);
    expect(calls.indexOf("service nfsd start")).toBeGreaterThan(1);
    expect(sb.prop(`${received}/k3svolumes`, "mounted")).toBe("yes");
    expect(sb.read("syslog")).toMatch(/daemon\.err carpcontrol: zdata\/sink\/f0\/zdata\/enc\/nfsdata\/backup\/earth cannot be mounted: \/data\/nfs\/backup\/earth is not in the NFS dataset yet/);
  });

  it("on BACKUP stops stunnel and the NFS services, and logs", () => {
    const sb = new Sandbox();
    for (const s of ["rpcbind", "nfsuserd", "mountd", "nfsd", "stunnel"]) sb.set(`running/${s}`);
    expect(sb.run("dash", carpcontrol(sb, "f1"), ["1@re0", "BACKUP"]).code).toBe(0);
    expect(sb.calls().filter((c) => !c.endsWith(" status"))).toEqual(["service stunnel stop", "service nfsd stop", "service mountd stop", "service nfsuserd stop"]);
    expect(sb.has("running/rpcbind")).toBe(true);
    expect(sb.read("syslog")).toMatch(/CARP 1@re0 is BACKUP: stopping stunnel and NFS/);
  });

  it("on MASTER without the NFS dataset (no key stick at boot) hands the VIP to the peer instead of serving nothing, once", () => {
    const sb = new Sandbox();
    sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, "MASTER"));
    const script = carpcontrol(sb, "f0", false);
    expect(sb.run("dash", script, ["1@re0", "MASTER"]).code).toBe(0);
    expect(sb.calls().filter((c) => c.startsWith("service") && !c.endsWith(" status"))).toEqual([]);
    expect(sb.calls()).toContain("ifconfig re0 vhid 1 advskew 254 state backup");
    expect(sb.read("syslog")).toMatch(/daemon\.err carpcontrol: CARP 1@re0 is MASTER but \/data\/nfs\/nfs\.DO_NOT_REMOVE is missing .*handing the VIP to the peer/);
    // The peer has no data either (or is down): this node is MASTER again and keeps the VIP.
    const before = sb.calls().length;
    expect(sb.run("dash", script, ["1@re0", "MASTER"]).code).toBe(0);
    expect(sb.calls().slice(before).filter((c) => c.startsWith("ifconfig") && c.includes("state"))).toEqual([]);
    expect(sb.read("syslog")).toMatch(/staying MASTER without NFS/);
  });

  it("reads the state from $2: a state in $1 (the post's bug) does nothing", () => {
    const sb = new Sandbox();
    sb.run("dash", carpcontrol(sb, "f0"), ["MASTER"]);
    expect(sb.calls()).toEqual([]);
  });

  it("logs a failed step at daemon.err and goes on", () => {
    const sb = new Sandbox();
    sb.set("fail/service-nfsd-start");
    sb.run("dash", carpcontrol(sb, "f0"), ["1@re0", "MASTER"]);
    expect(sb.read("syslog")).toMatch(/daemon\.err carpcontrol: service nfsd start: failed/);
    expect(sb.calls()).toContain("service stunnel restart");
  });

  it("is the action of the devd notify block, which passes $subsystem $type", () => {
    const conf = readFileSync(file("f0", "usr/local/etc/devd/carp.conf"), "utf8");
    expect(conf).toContain('action "/usr/local/bin/carpcontrol.sh $subsystem $type";');
    expect(conf).toContain('match "subsystem"\t"1@re0";');
    expect(readFileSync(file("stor-a", "usr/local/etc/devd/carp.conf"), "utf8")).toContain('"42@igb0\\.42"');
  });
});

describe.skipIf(!ready)("rc.d/f3s_carp_sync (late in boot, with a stand-in rc.subr)", () => {
  function boot(state: string) {
    const sb = new Sandbox();
    const root = roots.get("f0")!;
    sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, state));
    for (const s of ["rpcbind", "nfsuserd", "mountd", "nfsd", "stunnel"]) sb.set(`running/${s}`);
    const carp = sb.script(file("f0", "usr/local/bin/carp"));
    const control = carpcontrol(sb, "f0");
    const script = sb.script(file("f0", "usr/local/etc/rc.d/f3s_carp_sync"), { RC_SUBR: join(stubsDir, "rc.subr"), CARP: carp, CARPCONTROL: control });
    sb.extraEnv.RC_ROOT = root;
    const r = sb.run("dash", script, ["faststart"]);
    expect(r.code, r.stderr).toBe(0);
    return sb;
  }

  it("on a BACKUP stops the NFS services and stunnel that booting started", () => {
    const sb = boot("BACKUP");
    expect(sb.calls().filter((c) => c.endsWith(" stop"))).toEqual(["service stunnel stop", "service nfsd stop", "service mountd stop", "service nfsuserd stop"]);
    expect(sb.read("syslog")).toMatch(/CARP boot is BACKUP/);
  });

  it("on the MASTER keeps them and restarts stunnel so it binds the VIP", () => {
    const sb = boot("MASTER");
    expect(sb.calls().filter((c) => !c.endsWith(" status") && c.startsWith("service"))).toEqual(["service stunnel restart"]);
  });

  /** The script at shutdown (rc.shutdown runs `faststop`), with this node's CARP in `state`. */
  function shutdown(state: string) {
    const sb = new Sandbox();
    sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, state));
    for (const s of ["rpcbind", "nfsuserd", "mountd", "nfsd", "stunnel"]) sb.set(`running/${s}`);
    const carp = sb.script(file("f0", "usr/local/bin/carp"), { HANDOVER_FILE: join(sb.dir, "handover"), SETTLE_SECONDS: "0" });
    const script = sb.script(file("f0", "usr/local/etc/rc.d/f3s_carp_sync"), { RC_SUBR: join(stubsDir, "rc.subr"), CARP: carp, CARPCONTROL: "false", HANDOVER_WAIT: "1" });
    sb.extraEnv.RC_ROOT = roots.get("f0")!;
    const r = sb.run("dash", script, ["faststop"]);
    expect(r.code, r.stderr).toBe(0);
    return sb;
  }

  it("at shutdown, a MASTER hands the VIP to the peer and waits for it, before anything stops NFS or stunnel", () => {
    const sb = shutdown("MASTER");
    expect(sb.calls().filter((c) => c.startsWith("ifconfig re0 vhid"))).toEqual(["ifconfig re0 vhid 1 advskew 254 state backup"]);
    expect(sb.calls().filter((c) => c.startsWith("service") && !c.endsWith(" status"))).toEqual([]);
    expect(sb.read("syslog")).toMatch(/handing the VIP to the peer before NFS and stunnel stop[\s\S]*the peer holds the VIP/);
    // A BACKUP has nothing to hand over.
    expect(shutdown("BACKUP").calls().filter((c) => c.startsWith("ifconfig re0 vhid"))).toEqual([]);
    // The wait outlasts this node's master-down interval at advskew 254 (3 x advbase + 254/256 s).
    expect(readFileSync(file("f0", "usr/local/etc/rc.d/f3s_carp_sync"), "utf8")).toMatch(/^HANDOVER_WAIT=6$/m);
  });

  it("stops first at shutdown: rc.shutdown runs rcorder -k shutdown in reverse (etc/rc.shutdown, reverse_list)", () => {
    // The headers of FreeBSD's rc.d/mountd and rc.d/nfsd (libexec/rc/rc.d) and the stunnel port's
    // script: each has KEYWORD shutdown, so rc.shutdown stops them too.
    const scripts: Record<string, string> = {
      mountd: "# PROVIDE: mountd\n# REQUIRE: NETWORKING rpcbind quota mountlate\n# KEYWORD: nojail shutdown\n",
      nfsd: "# PROVIDE: nfsd\n# REQUIRE: mountd hostname gssd nfsuserd\n# KEYWORD: nojail shutdown\n",
      stunnel: "# PROVIDE: stunnel\n# REQUIRE: LOGIN\n# KEYWORD: shutdown\n",
      f3s_carp_sync: readFileSync(file("f0", "usr/local/etc/rc.d/f3s_carp_sync"), "utf8"),
    };
    const header = (text: string, key: string) => (new RegExp(`^# ${key}: (.*)$`, "m").exec(text)?.[1] ?? "").split(/\s+/).filter(Boolean);
    // rcorder(8): a script comes after every script that PROVIDEs what it REQUIREs; -k keeps those
    // with the keyword. A depth-first order of the ones at hand is one rcorder could print.
    const withShutdown = Object.keys(scripts).filter((n) => header(scripts[n]!, "KEYWORD").includes("shutdown"));
    const order: string[] = [];
    const visit = (n: string) => {
      if (order.includes(n)) return;
      for (const req of header(scripts[n]!, "REQUIRE")) {
        const provider = withShutdown.find((m) => header(scripts[m]!, "PROVIDE").includes(req));
        if (provider) visit(provider);
      }
      order.push(n);
    };
    withShutdown.forEach(visit);
    const stopOrder = [...order].reverse();
    expect(stopOrder).toContain("f3s_carp_sync");
    for (const svc of ["stunnel", "nfsd", "mountd"]) expect(stopOrder.indexOf("f3s_carp_sync"), svc).toBeLessThan(stopOrder.indexOf(svc));
  });

  it("does nothing while CARP is still INIT (devd acts on the first transition)", () => {
    const sb = boot("INIT");
    expect(sb.calls().filter((c) => c.startsWith("service"))).toEqual([]);
    expect(sb.read("syslog")).toMatch(/CARP is INIT at boot/);
  });
});

describe.skipIf(!ready)("carp-auto-failback.sh", () => {
  function setup(state: string, opts: { mounted?: boolean; marker?: boolean; block?: boolean } = {}) {
    const sb = new Sandbox();
    sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, state));
    if (opts.mounted ?? true) sb.set("mounts", "zdata/enc/nfsdata /data/nfs zfs rw 0 0\nzroot/ROOT/default / zfs rw 0 0\n");
    const marker = join(sb.dir, "marker");
    const block = join(sb.dir, "block");
    if (opts.marker ?? true) writeFileSync(marker, "");
    if (opts.block) writeFileSync(block, "");
    const carp = sb.script(file("f0", "usr/local/bin/carp"), { BLOCK_FILE: block, SETTLE_SECONDS: "0", HANDOVER_FILE: join(sb.dir, "handover") });
    const script = sb.script(file("f0", "usr/local/bin/carp-auto-failback.sh"), {
      LOGFILE: join(sb.dir, "failback.log"), MARKER_FILE: marker, BLOCK_FILE: block, SETTLE_FILE: join(sb.dir, "settle"), CARP: carp, WAIT_SECONDS: "0",
    });
    const run = () => {
      const r = sb.run("dash", script);
      // cron mails any output: there must never be any.
      expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    };
    const log = () => (existsSync(join(sb.dir, "failback.log")) ? readFileSync(join(sb.dir, "failback.log"), "utf8") : "");
    return { sb, run, log };
  }
  const promoted = (sb: Sandbox) => sb.calls().includes("ifconfig re0 vhid 1 advskew 0 state master");

  it("exits quietly when MASTER", () => {
    const { sb, run, log } = setup("MASTER");
    run();
    expect(log()).toBe("");
    expect(promoted(sb)).toBe(false);
  });

  it.each([
    ["INIT", {}, /SKIP: CARP is INIT/],
    ["BACKUP", { mounted: false }, /SKIP: \/data\/nfs not mounted/],
    ["BACKUP", { marker: false }, /SKIP: marker file .* not found/],
    ["BACKUP", { block: true }, /SKIP: failback blocked by/],
  ] as const)("skips when %s %j, and logs why", (state, opts, message) => {
    const { sb, run, log } = setup(state, opts);
    run();
    run();
    expect(log()).toMatch(message);
    expect(promoted(sb)).toBe(false);
  });

  it("promotes only a settled BACKUP (seen on two runs) when all conditions hold", () => {
    const { sb, run, log } = setup("BACKUP");
    run();
    expect(promoted(sb)).toBe(false);
    expect(log()).toMatch(/WAIT: BACKUP and ready/);
    run();
    expect(promoted(sb)).toBe(true);
    expect(log()).toMatch(/CONDITIONS MET: promoting to MASTER \(was BACKUP\)/);
    expect(log()).toMatch(/Failback complete: state is now MASTER/);
    expect(sb.read("syslog")).toMatch(/daemon\.notice carp-auto-failback: f0 reclaimed CARP MASTER/);
    expect(log().split("\n")[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - /);
  });

  it("does not count a BACKUP seen before an INIT as settled", () => {
    const { sb, run } = setup("BACKUP");
    run();
    sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, "INIT"));
    run();
    sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, "BACKUP"));
    run();
    expect(promoted(sb)).toBe(false);
  });

  it("logs a promotion that did not stick to syslog at daemon.err", () => {
    const { sb, run, log } = setup("BACKUP");
    sb.set("fail/ifconfig-state");
    run();
    run();
    expect(log()).toMatch(/state is now BACKUP/);
    expect(sb.read("syslog")).toMatch(/daemon\.err carp-auto-failback: f0 failed to reclaim CARP MASTER \(state BACKUP\)/);
  });

  it("never checks nfsd (stopped on BACKUP on purpose)", () => {
    const { sb, run } = setup("BACKUP");
    run();
    run();
    expect(sb.calls().filter((c) => c.startsWith("service"))).toEqual([]);
    expect(promoted(sb)).toBe(true);
  });
});

describe.skipIf(!ready)("check-nfs-mount.sh", () => {
  function setup(host: string, mounts: [string, string][]) {
    const sb = new Sandbox();
    for (const [mp, unit] of mounts) {
      sb.set(`mounted/${mp.replace(/\//g, "%")}`);
      sb.set(`units/${unit}`, mp);
    }
    const stateDir = join(sb.dir, "monitor");
    const script = sb.script(file(host, "usr/local/bin/check-nfs-mount.sh"), { STATE_DIR: stateDir });
    return { sb, script, stateDir, stale: (mp: string) => sb.set(`stale/${mp.replace(/\//g, "%")}`) };
  }
  const pods = [
    "kube-system   coredns-1      1/1   Running             0   1d",
    "default       web-7f9        0/1   ContainerCreating   0   5m",
    "default       db-0           0/1   Unknown             2   1h",
    "default       job-x          0/1   Pending             0   2m",
    "monitoring    prom-0         1/1   Running             0   3d",
  ].join("\n");

  it("does nothing while the mounts are healthy", () => {
    const { sb, script } = setup("r0", [["/data/nfs/k3svolumes", "data-nfs-k3svolumes.mount"]]);
    expect(sb.run("bash", script)).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(sb.calls()).toEqual([]);
    expect(sb.read("journal")).toBe("");
  });

  it("force-unmounts and remounts a mount stale on two checks in a row through its unit, logs it, then deletes stuck pods", () => {
    const { sb, script, stale } = setup("r0", [["/data/nfs/k3svolumes", "data-nfs-k3svolumes.mount"]]);
    sb.set("pods", pods);
    stale("/data/nfs/k3svolumes");
    // The first failed check only marks it: a tunnel restart stalls a mount for a few seconds.
    expect(sb.run("bash", script)).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(sb.calls()).toEqual([]);
    expect(sb.read("journal")).toMatch(/warning nfs-monitor: NFS mount \/data\/nfs\/k3svolumes is unhealthy: repaired if it still is at the next check/);
    expect(sb.run("bash", script).code).toBe(0);
    const calls = sb.calls();
    expect(calls.slice(0, 2)).toEqual(["umount -f /data/nfs/k3svolumes", "systemctl restart data-nfs-k3svolumes.mount"]);
    expect(calls).toContain("kubectl get pods --all-namespaces --field-selector spec.nodeName=r0 --no-headers");
    const deleted = calls.filter((c) => c.startsWith("kubectl delete"));
    expect(deleted).toEqual([
      "kubectl delete pod --namespace default web-7f9 --force --grace-period=0",
      "kubectl delete pod --namespace default db-0 --force --grace-period=0",
      "kubectl delete pod --namespace default job-x --force --grace-period=0",
    ]);
    const journal = sb.read("journal");
    expect(journal).toMatch(/warning nfs-monitor: NFS mount \/data\/nfs\/k3svolumes is unhealthy/);
    expect(journal).toMatch(/info nfs-monitor: NFS mount \/data\/nfs\/k3svolumes fixed/);
    expect(journal).toMatch(/notice nfs-monitor: deleted stuck pod default\/db-0 \(Unknown\)/);
  });

  it("leaves a mount unit alone while systemd is still starting it (boot), and repairs it once it is up", () => {
    const { sb, script, stale } = setup("r0", [["/data/nfs/k3svolumes", "data-nfs-k3svolumes.mount"]]);
    sb.set("pods", pods);
    sb.set("mounted/%data%nfs%k3svolumes", "");
    stale("/data/nfs/k3svolumes");
    sb.set("activating/data-nfs-k3svolumes.mount");
    expect(sb.run("bash", script)).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(sb.calls()).toEqual([]);
    sb.run("bash", script);
    rmSync(join(sb.state, "activating/data-nfs-k3svolumes.mount"));
    sb.run("bash", script);
    expect(sb.calls()).toEqual([]);
    sb.run("bash", script);
    expect(sb.calls().slice(0, 2)).toEqual(["umount -f /data/nfs/k3svolumes", "systemctl restart data-nfs-k3svolumes.mount"]);
  });

  it("judges health with statfs (stat -f), which the attribute cache cannot answer", () => {
    const text = readFileSync(file("r0", "usr/local/bin/check-nfs-mount.sh"), "utf8");
    expect(text).toMatch(/timeout 5s stat -f "\$1"/);
    expect(text).not.toMatch(/stat -t/);
  });

  it("the monitor service is ordered after remote-fs.target and every mount unit", () => {
    const unit = readFileSync(file("k8s-a", "etc/systemd/system/nfs-mount-monitor.service"), "utf8");
    const after = /^After=(.*)$/m.exec(unit)![1]!.split(" ");
    expect(after).toEqual(expect.arrayContaining(["remote-fs.target", "stunnel.service", "var-lib-k8s\\x2dvols.mount", "mnt-media.mount"]));
  });

  it("repairs each mount through its own (escaped) unit", () => {
    const { sb, script, stale } = setup("k8s-a", [["/var/lib/k8s-vols", "var-lib-k8s\\x2dvols.mount"], ["/mnt/media", "mnt-media.mount"]]);
    stale("/mnt/media");
    sb.run("bash", script);
    sb.run("bash", script);
    expect(sb.calls().filter((c) => !c.startsWith("kubectl"))).toEqual(["umount -f /mnt/media", "systemctl restart mnt-media.mount"]);
  });

  it("leaves pods alone when the client did not ask for it", () => {
    const { sb, script, stale } = setup("earth", [["/data/nfs", "data-nfs.mount"]]);
    sb.set("pods", pods);
    stale("/data/nfs");
    sb.run("bash", script);
    sb.run("bash", script);
    expect(sb.calls()).toEqual(["umount -f /data/nfs", "systemctl restart data-nfs.mount"]);
  });

  it("leaves pods alone when the repair failed, and logs the failure", () => {
    const { sb, script, stale } = setup("r0", [["/data/nfs/k3svolumes", "data-nfs-k3svolumes.mount"]]);
    sb.set("pods", pods);
    sb.set("fail/restart");
    stale("/data/nfs/k3svolumes");
    sb.run("bash", script);
    sb.run("bash", script);
    expect(sb.calls()).toContain("systemctl restart data-nfs-k3svolumes.mount");
    expect(sb.calls().some((c) => c.startsWith("kubectl"))).toBe(false);
    expect(sb.read("journal")).toMatch(/err nfs-monitor: failed to fix NFS mount \/data\/nfs\/k3svolumes/);
  });

  it("does not run while another run holds the lock", () => {
    const { sb, script, stale, stateDir } = setup("r0", [["/data/nfs/k3svolumes", "data-nfs-k3svolumes.mount"]]);
    stale("/data/nfs/k3svolumes");
    const release = sb.holdLock(join(stateDir, "lock"));
    try {
      // Give flock(1) a moment to take the lock (bounded).
      const until = Date.now() + 5000;
      while (spawnSync("flock", ["-n", join(stateDir, "lock"), "true"]).status === 0 && Date.now() < until) spawnSleep(20);
      expect(sb.run("bash", script).code).toBe(0);
      expect(sb.calls()).toEqual([]);
    } finally {
      release();
    }
    sb.run("bash", script);
    sb.run("bash", script);
    expect(sb.calls()).toContain("systemctl restart data-nfs-k3svolumes.mount");
  });
});

function spawnSleep(ms: number) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe.skipIf(!ready)("f3s-activate", () => {
  const hostsBefore = "127.0.0.1 localhost\n192.168.1.138 f3s-storage-ha # added by hand\n::1 localhost\n";

  /** A storage node's root with the tarball extracted, and what the preflight asks for. */
  function storage(host: string, carpState: string | null, built = example) {
    const sb = new Sandbox();
    const root = extractRoot(join(built.outDir, `${host}.tar.gz`));
    const release = readFileSync(join(root, "var/db/f3s/staged"), "utf8").trim();
    mkdirSync(join(root, "etc"), { recursive: true });
    mkdirSync(join(root, "keys"), { recursive: true });
    mkdirSync(join(root, "usr/local/etc/rc.d"), { recursive: true });
    for (const pkg of ["zrepl", "stunnel"]) writeFileSync(join(root, "usr/local/etc/rc.d", pkg), "#!/bin/sh\n", { mode: 0o755 });
    for (const k of [`${host}.lan.buetow.org:zdata.key`, `${host}.lan.buetow.org:bhyve.key`, "f0.lan.buetow.org:zdata.key"]) writeFileSync(join(root, "keys", k), Buffer.alloc(32, 1));
    sb.set("zpool/zdata");
    sb.set("zpool/zroot");
    sb.dataset("zdata/sink");
    writeFileSync(join(root, "etc/hosts"), hostsBefore);
    writeFileSync(join(root, "etc/devd.conf"), "# stock devd.conf\n");
    // The NFS root as zfs mount leaves it (a directory).
    mkdirSync(join(root, "data/nfs"), { recursive: true });
    sb.set("if/re0", carpState ? carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, carpState) : plainInterface("re0", "192.168.1.130"));
    sb.set("sysctl/vfs.nfsd.nfs_privport", "1\n");
    sb.dataset("zdata/enc", { keylocation: "prompt", encryptionroot: "zdata/enc" });
    sb.dataset("zroot/bhyve", { keylocation: "file:///keys/" + host + ".lan.buetow.org:bhyve.key", encryptionroot: "zroot/bhyve" });
    // f3s-activate as installed: it finds the root from where it lies.
    return { sb, root, release: join(root, "var/db/f3s/releases", release), run: () => sb.run("dash", join(root, "usr/local/sbin/f3s-activate")) };
  }

  const mutations = (sb: Sandbox) => sb.calls().filter((c) => mutating.test(c));

  it("primary: first run sets everything up, the second changes nothing", () => {
    const { sb, root, release, run } = storage("f0", null);
    sb.dataset("zdata/enc/nfsdata");
    const first = run();
    expect(first.code, first.stderr).toBe(0);
    const calls = mutations(sb);
    expect(calls).toEqual(expect.arrayContaining([
      "kldload carp",
      "ifconfig re0 inet vhid 1 advskew 0 pass testpass alias 192.168.1.138/32",
      "service devd restart",
      "zfs set keylocation=file:///keys/f0.lan.buetow.org:zdata.key zdata/enc",
      "zfs set mountpoint=/data/nfs zdata/enc/nfsdata",
      "zfs mount zdata/enc/nfsdata",
      "sysctl vfs.nfsd.nfs_privport=0",
      "service zrepl start",
    ]));
    expect(sb.calls()).toContain(`zrepl --config ${release}/usr/local/etc/zrepl/zrepl.yml configcheck`);
    expect(existsSync(join(root, "data/nfs/nfs.DO_NOT_REMOVE"))).toBe(true);
    const hosts = readFileSync(join(root, "etc/hosts"), "utf8");
    expect(hosts).toBe("127.0.0.1 localhost\n::1 localhost\n# BEGIN f3s-gen: storage VIP (managed by f3s-activate)\n192.168.1.138 f3s-storage-ha f3s-storage-ha.lan f3s-storage-ha.lan.buetow.org\n# END f3s-gen\n");
    // BACKUP after adding the VIP: NFS stays down, carpcontrol.sh starts it on MASTER.
    expect(calls.filter((c) => /^service (rpcbind|nfsuserd|mountd|nfsd|stunnel) (start|restart)/.test(c))).toEqual([]);
    const before = mutations(sb).length;
    const second = run();
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/f0 is up to date with release [0-9a-f]{16}: nothing changed/);
    expect(mutations(sb).slice(before)).toEqual([]);
    expect(readFileSync(join(root, "etc/hosts"), "utf8")).toBe(hosts);
  });

  it("primary as MASTER starts what is not running; a running stunnel is restarted once for its new files", () => {
    const { sb, run } = storage("f0", "MASTER");
    sb.dataset("zdata/enc/nfsdata", { mounted: "yes", mountpoint: "/data/nfs" });
    sb.set("running/stunnel");
    run();
    const calls = mutations(sb);
    expect(calls).toEqual(expect.arrayContaining(["service rpcbind start", "service nfsuserd start", "service mountd start", "service nfsd start"]));
    expect(calls.filter((c) => c.startsWith("service stunnel"))).toEqual(["service stunnel restart"]);
    const before = mutations(sb).length;
    run();
    expect(mutations(sb).slice(before)).toEqual([]);
  });

  it("BACKUP stops NFS and stunnel that boot started on both nodes", () => {
    const { sb, run } = storage("f1", "BACKUP");
    for (const s of ["rpcbind", "nfsuserd", "mountd", "nfsd", "stunnel"]) sb.set(`running/${s}`);
    run();
    expect(mutations(sb).filter((c) => /^service \w+ stop$/.test(c))).toEqual(["service stunnel stop", "service nfsd stop", "service mountd stop", "service nfsuserd stop"]);
    expect(sb.has("running/rpcbind")).toBe(true);
  });

  it("warns about a second devd notify block in /etc/devd.conf", () => {
    const { sb, root, run } = storage("f0", "BACKUP");
    sb.dataset("zdata/enc/nfsdata");
    writeFileSync(join(root, "etc/devd.conf"), 'notify 0 { action "/usr/local/bin/carpcontrol.sh $subsystem $type"; };\n');
    expect(run().stderr).toMatch(/\/etc\/devd.conf also runs carpcontrol.sh/);
  });

  // exports(5): "all the above export line(s) should be considered to have the -alldirs flag" for
  // NFSv4, and mountd.c (do_mount) hands a line to the mount of the file system its path is on.
  it("says whose certificates reach a whole file system beyond their exports, and is silent when each export is one", () => {
    const { sb, run } = storage("f0", "BACKUP");
    sb.dataset("zdata/enc/nfsdata", { mounted: "yes", mountpoint: "/data/nfs" });
    // FreeBSD's mount -p: fstab-format lines. k3svolumes is a directory of the NFS dataset.
    sb.set("mounts", "zroot/ROOT/default / zfs rw 0 0\nzdata/enc/nfsdata /data/nfs zfs rw,nfsv4acls 0 0\n");
    const wide = run();
    expect(wide.code, wide.stderr).toBe(0);
    expect(wide.stderr).toContain("WARNING: the certificates of r0 r1 r2 reach all of /data/nfs, not only their exports");
    expect(wide.stderr).not.toMatch(/earth/);
    // k3svolumes a dataset of its own: every certificate reaches exactly its exports.
    sb.set("mounts", "zroot/ROOT/default / zfs rw 0 0\nzdata/enc/nfsdata /data/nfs zfs rw,nfsv4acls 0 0\nzdata/enc/nfsdata/k3svolumes /data/nfs/k3svolumes zfs rw,nfsv4acls 0 0\n");
    expect(run().stderr).not.toContain("reach all of");
    // The NFS dataset not mounted (the standby before its first replication): nothing to say.
    sb.set("mounts", "zroot/ROOT/default / zfs rw 0 0\n");
    expect(run().stderr).not.toContain("reach all of");
  });

  it("standby: waits for the first replication, then sets keylocation, loads the key, mounts read-only", () => {
    const { sb, run } = storage("f1", "BACKUP");
    sb.set("zpool/zdata");
    expect(run().stdout).toMatch(/zdata\/sink\/f0\/zdata\/enc\/nfsdata has not been received yet/);
    const received = "zdata/sink/f0/zdata/enc/nfsdata";
    sb.dataset(received, { keylocation: "prompt", keystatus: "unavailable" });
    expect(run().code).toBe(0);
    expect(sb.prop(received, "keylocation")).toBe("file:///keys/f0.lan.buetow.org:zdata.key");
    expect(sb.prop(received, "keystatus")).toBe("available");
    expect(sb.prop(received, "readonly")).toBe("on");
    expect(sb.prop(received, "mountpoint")).toBe("/data/nfs");
    expect(sb.prop(received, "mounted")).toBe("yes");
    const before = mutations(sb).length;
    expect(run().stdout).toContain("nothing changed");
    expect(mutations(sb).slice(before)).toEqual([]);
  });

  // fixtures/valid/export-datasets: k3svolumes (the workers'), and backup/earth below backup.
  it("export datasets: the primary creates each export's dataset, parents first, after the NFS dataset; then nothing", () => {
    const { sb, run } = storage("f0", null, exportDatasets);
    sb.dataset("zdata/enc/nfsdata");
    const first = run();
    expect(first.code, first.stderr).toBe(0);
    expect(mutations(sb).filter((c) => /^zfs (create|mount)/.test(c))).toEqual([
      "zfs mount zdata/enc/nfsdata",
      "zfs create zdata/enc/nfsdata/backup",
      "zfs create zdata/enc/nfsdata/backup/earth",
      "zfs create zdata/enc/nfsdata/k3svolumes",
    ]);
    expect(first.stdout).toContain("created zdata/enc/nfsdata/k3svolumes: the export /data/nfs/k3svolumes is a file system of its own");
    expect(sb.prop("zdata/enc/nfsdata/backup/earth", "mountpoint")).toBe("/data/nfs/backup/earth");
    const before = mutations(sb).length;
    expect(run().stdout).toContain("nothing changed");
    expect(mutations(sb).slice(before)).toEqual([]);
    // One unmounted since (a failed mount at boot): mounted again, not created.
    sb.set("zfs/zdata%enc%nfsdata%k3svolumes/mounted", "no\n");
    run();
    expect(mutations(sb).slice(before)).toEqual(["zfs mount zdata/enc/nfsdata/k3svolumes"]);
  });

  it("export datasets: preflight refuses an export path holding files (they would be hidden) or a planted link, and changes nothing", () => {
    const { sb, root, run } = storage("f0", null, exportDatasets);
    sb.dataset("zdata/enc/nfsdata", { mounted: "yes", mountpoint: "/data/nfs" });
    mkdirSync(join(root, "data/nfs/k3svolumes"));
    writeFileSync(join(root, "data/nfs/k3svolumes/pvc-1"), "a volume\n");
    symlinkSync("/etc", join(root, "data/nfs/backup"));
    const r = run();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("preflight: the export /data/nfs/k3svolumes holds files but is not the dataset zdata/enc/nfsdata/k3svolumes (storage.nfs.exportDatasets): creating the dataset would hide them");
    expect(r.stderr).toContain("preflight: the export /data/nfs/backup is a link or a file, not a directory (planted through NFS?)");
    expect(mutations(sb)).toEqual([]);
    // An empty directory is no loss: the dataset is mounted over it.
    rmSync(join(root, "data/nfs/k3svolumes/pvc-1"));
    rmSync(join(root, "data/nfs/backup"));
    const fine = run();
    expect(fine.code, fine.stderr).toBe(0);
    expect(mutations(sb)).toContain("zfs create zdata/enc/nfsdata/k3svolumes");
  });

  it("export datasets: the standby mounts each one read-only once it and its directory are received", () => {
    const { sb, root, run } = storage("f1", "BACKUP", exportDatasets);
    const received = "zdata/sink/f0/zdata/enc/nfsdata";
    sb.dataset(received, { keylocation: "prompt", keystatus: "unavailable" });
    const child = `${received}/k3svolumes`;
    // Received raw on its own: an encryption root of its own, its key not loaded.
    sb.dataset(child, { keylocation: "prompt", keystatus: "unavailable", encryptionroot: child });
    const first = run();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`${received}/backup has not been received yet`);
    expect(first.stdout).toContain("/data/nfs/k3svolumes is not in the received /data/nfs yet");
    expect(sb.prop(child, "mounted")).toBe("no");
    // The parent's next snapshot brings the mount point.
    mkdirSync(join(root, "data/nfs/k3svolumes"));
    expect(run().code).toBe(0);
    expect(sb.prop(child, "keylocation")).toBe("file:///keys/f0.lan.buetow.org:zdata.key");
    expect(sb.prop(child, "keystatus")).toBe("available");
    expect(sb.prop(child, "readonly")).toBe("on");
    expect(sb.prop(child, "mountpoint")).toBe("/data/nfs/k3svolumes");
    expect(sb.prop(child, "mounted")).toBe("yes");
    // One that inherits its key from the received parent takes no keylocation (zfs refuses it).
    sb.dataset(`${received}/backup`, { encryptionroot: received, mountpoint: "/data/nfs/backup" });
    mkdirSync(join(root, "data/nfs/backup"));
    expect(run().code).toBe(0);
    expect(sb.calls().filter((c) => c.startsWith(`zfs set keylocation=`) && c.endsWith(`${received}/backup`))).toEqual([]);
    expect(sb.prop(`${received}/backup`, "mounted")).toBe("yes");
  });

  it("a live file changed by hand is put back from the release; its service is not restarted for it", () => {
    const { sb, root, run } = storage("f0", "MASTER");
    sb.dataset("zdata/enc/nfsdata", { mounted: "yes", mountpoint: "/data/nfs" });
    const restarts = () => sb.calls().filter((c) => c === "service stunnel restart").length;
    expect(run().stdout).toMatch(/started stunnel \(this node is MASTER\)/);
    run();
    expect(restarts()).toBe(0);
    // stunnel read the release's allow-lists when it started; the edit never reached it.
    writeFileSync(join(root, "usr/local/etc/stunnel/ca/clients/r1.pem"), "changed\n");
    const repaired = run();
    expect(repaired.stdout).toContain("changed: updated /usr/local/etc/stunnel/ca/clients/r1.pem");
    expect(restarts()).toBe(0);
    expect(run().stdout).toMatch(/nothing changed/);
  });

  it.each(["r0", "earth"])("client %s: enables and starts its units once; the second run changes nothing", (host) => {
    const sb = new Sandbox();
    const root = extractRoot(join(example.outDir, `${host}.tar.gz`));
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "etc/hosts"), "127.0.0.1 localhost\n");
    const script = join(root, "usr/local/sbin/f3s-activate");
    const first = sb.run("dash", script);
    expect(first.code, first.stderr).toBe(0);
    const units = ["f3s-tunnel-guard.service", "stunnel.service", host === "r0" ? "data-nfs-k3svolumes.mount" : "data-nfs.mount", "nfs-mount-monitor.timer", "f3s-metrics.timer", ...(host === "earth" ? ["f3s-nfs-dnat.service"] : [])];
    expect(mutations(sb)).toEqual([
      "systemctl daemon-reload",
      "sysctl --system",
      ...units.flatMap((u) => [`systemctl enable ${u}`, `systemctl start ${u}`]),
      "nfsidmap -c",
    ]);
    const before = mutations(sb).length;
    const second = sb.run("dash", script);
    expect(second.stdout).toMatch(new RegExp(`${host} is up to date with release [0-9a-f]{16}: nothing changed`));
    expect(mutations(sb).slice(before)).toEqual([]);
  });

  it("client: activation waits for the mount monitor's run to end, and holds the monitor's lock while it changes units", async () => {
    const sb = new Sandbox();
    const root = extractRoot(join(example.outDir, "r0.tar.gz"));
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "etc/hosts"), "127.0.0.1 localhost\n");
    const lock = join(root, "run/f3s-nfs-mount-monitor/lock");
    // A monitor run in progress (the lock its check-nfs-mount.sh takes).
    const release = sb.holdLock(lock);
    const until = Date.now() + 5000;
    while (spawnSync("flock", ["-n", lock, "true"]).status === 0 && Date.now() < until) spawnSleep(20);
    // systemctl stand-in that reports whether the monitor's lock is free while activation starts a mount.
    const probe = join(sb.dir, "probe");
    mkdirSync(probe);
    writeFileSync(join(probe, "systemctl"), `#!/bin/sh\ncase "$*" in "start data-nfs-k3svolumes.mount") flock -n '${lock}' true && echo free >> '${sb.state}/lock-while-start' || echo held >> '${sb.state}/lock-while-start' ;; esac\nexec '${join(stubsDir, "systemctl")}' "$@"\n`, { mode: 0o755 });
    sb.before.push(probe);
    const run = spawn("dash", [join(root, "usr/local/sbin/f3s-activate")], { env: sb.env() });
    let stdout = "";
    run.stdout.on("data", (d) => (stdout += d));
    const exited = new Promise<number>((resolve) => run.on("close", (code) => resolve(code ?? -1)));
    try {
      const waitUntil = Date.now() + 20_000;
      while (!stdout.includes("waiting for the NFS mount monitor") && Date.now() < waitUntil) await new Promise((r) => setTimeout(r, 50));
      expect(stdout).toMatch(/waiting for the NFS mount monitor's current run to end/);
      expect(mutations(sb)).toEqual([]);
    } finally {
      release();
    }
    expect(await exited).toBe(0);
    expect(mutations(sb)).toContain("systemctl start data-nfs-k3svolumes.mount");
    expect(sb.read("lock-while-start").trim()).toBe("held");
  });

  it("member: merges the hosts line once", () => {
    const sb = new Sandbox();
    const root = extractRoot(join(example.outDir, "f2.tar.gz"));
    mkdirSync(join(root, "etc"));
    writeFileSync(join(root, "etc/hosts"), "127.0.0.1 localhost\n");
    const script = join(root, "usr/local/sbin/f3s-activate");
    expect(sb.run("dash", script).stdout).toMatch(/changed: \/etc\/hosts/);
    const hosts = readFileSync(join(root, "etc/hosts"), "utf8");
    expect(sb.run("dash", script).stdout).toMatch(/nothing changed/);
    expect(readFileSync(join(root, "etc/hosts"), "utf8")).toBe(hosts);
  });
});

import { spawn, spawnSync } from "node:child_process";
/** A process that records every SIGHUP it gets, standing in for stunnel. */
function spawnDaemon(hupFile: string) {
  return spawn("bash", ["-c", `trap 'echo hup >> "${hupFile}"' HUP; while :; do sleep 0.05; done`], { stdio: "ignore" });
}
