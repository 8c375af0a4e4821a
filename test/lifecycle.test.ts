// Lifecycle: a host deployed with one release and then with the next must end exactly where a host
// deployed only with the next one does. Each case builds v1 from the example spec, deploys it to a
// simulated host (an extracted root plus the stand-ins of test/stubs, which keep state: running
// services, enabled units, interface aliases, ZFS properties), changes one thing in the spec,
// builds v2 into the same out/, extracts v2 over v1 and activates; then compares the whole state
// (files with modes, and the stand-ins' state) with a fresh v2 deploy. `--check` must predict
// exactly the changes the run then makes, and a second run must change nothing.
// A host removed from the spec gets out/retired/<host>.tar.gz: its f3s-decommission must leave the
// host as it was before f3s-gen came.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain } from "../src/cli.js";
import { packageRoot } from "../src/paths.js";
import { hasTool, listFiles, privateSecrets, tempDir } from "./support.js";
import { Host, changeLines, keep, release } from "./host-harness.js";

const mkdir = (p: string) => mkdirSync(p, { recursive: true });
const ready = hasTool("dash", ["-c", "true"]) && hasTool("flock", ["--version"]);
const exampleSpec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");

/**
 * Deploys v1 then v2 to `host`, and v2 alone to a fresh twin; returns both for further checks
 * after asserting that the states agree, that --check predicted the run and that a rerun is idle.
 */
function upgrade(name: string, v1: string, v2: string) {
  const host = new Host(name);
  host.deploy(v1);
  if (name === "f0") host.becomeMaster();
  host.extract(join(v2, `${name}.tar.gz`));
  const before = host.state();
  const check = host.activate(["--check"]);
  expect(host.state(), "--check changes nothing").toEqual(before);
  const applied = host.activate();
  expect(applied.code, applied.stderr).toBe(0);
  if (name === "f0") host.settle();
  expect(changeLines(check.stdout, "would"), `${name}: --check predicts the run`).toEqual(changeLines(applied.stdout, "changed"));
  expect(check.code).toBe(changeLines(applied.stdout, "changed").length ? 3 : 0);
  const again = host.activate();
  expect(again.stdout, `${name}: a second run`).toContain("nothing changed");
  expect(host.activate(["--check"]).code).toBe(0);

  const fresh = new Host(name);
  fresh.deploy(v2);
  if (name === "f0") fresh.becomeMaster();
  expect(host.state(), `${name}: v1 then v2 equals a fresh v2`).toEqual(fresh.state());
  return { host, applied };
}

async function releases(change: (spec: string) => string, v1Spec = exampleSpec, between?: (spec: string, secretsDir: string) => Promise<void>) {
  const secretsDir = privateSecrets("example");
  const outDir = join(tempDir(), "out");
  const v1 = keep(await release(v1Spec, outDir, secretsDir));
  if (between) await between(change(v1Spec), secretsDir);
  const v2 = keep(await release(change(v1Spec), outDir, secretsDir));
  return { v1, v2 };
}

/** r1 mounts one more export, /data/nfs/media. */
const withR1Media = (s: string) => s.replace("  - name: r1\n    mounts:\n", "  - name: r1\n    mounts:\n      - export: /data/nfs/media\n        mountpoint: /mnt/media\n");
/** A storage host's exports lines (no V4: line, no comments). */
const exportsLines = (h: Host) => readFileSync(join(h.root, "etc/exports"), "utf8").split("\n").filter((l) => l.startsWith("/"));

describe.skipIf(!ready)("lifecycle: a changed spec deployed over the previous release", () => {
  it("a client removed from the spec: the storage nodes restart stunnel (its certificate is refused), the client is decommissioned", async () => {
    const { v1, v2 } = await releases((s) => s.replace(/  - name: r2\n(.*\n){4}/, ""));
    const { applied } = upgrade("f0", v1, v2);
    expect(changeLines(applied.stdout, "changed")).toContain("restarted stunnel for its new certificates or allowed clients (every TLS session ends; mounts reconnect)");
    upgrade("f1", v1, v2);
    upgrade("r0", v1, v2);

    expect(existsSync(join(v2, "r2.tar.gz"))).toBe(false);
    const r2 = new Host("r2");
    const pristine = r2.state();
    r2.deploy(v1);
    r2.extract(join(v2, "retired/r2.tar.gz"));
    const check = r2.run("usr/local/sbin/f3s-decommission", ["--check"]);
    expect(check.code).toBe(3);
    const done = r2.run("usr/local/sbin/f3s-decommission");
    expect(done.code, done.stderr).toBe(0);
    expect(changeLines(check.stdout, "would")).toEqual(changeLines(done.stdout, "changed"));
    expect(done.stdout).toMatch(/stopped and disabled data-nfs-k3svolumes\.mount/);
    expect(done.stdout).toMatch(/stopped and disabled the NFS tunnel/);
    expect(r2.state(), "nothing of f3s-gen is left").toEqual(pristine);
  });

  it("each client's own way in: a removed client's lo0 address, service and exports line go; an added client's come; a changed mount changes its line", async () => {
    // earth pins its slot, so removing r2 (slot 3) moves nobody else.
    const pinned = exampleSpec.replace("    redirectNfsPort: true", "    slot: 4\n    redirectNfsPort: true");
    expect(pinned).not.toBe(exampleSpec);
    const withoutR2 = (s: string) => s.replace(/  - name: r2\n(.*\n){4}/, "");
    const lo0 = (h: Host) => [...h.sb.read("if/lo0").matchAll(/inet (127\.0\.1\.\d+) /g)].map((m) => m[1]);
    const removed = await releases(withoutR2, pinned);
    const gone = upgrade("f0", removed.v1, removed.v2);
    expect(changeLines(gone.applied.stdout, "changed")).toContain("removed 127.0.1.3 from lo0 (its client left the spec)");
    expect(lo0(gone.host)).toEqual(["127.0.1.1", "127.0.1.2", "127.0.1.4"]);
    const exports = readFileSync(join(gone.host.root, "etc/exports"), "utf8");
    expect(exports).not.toMatch(/-network 127\.0\.1\.3 /);
    expect(exports).toMatch(/^\/data\/nfs -maproot=root -network 127\.0\.1\.4 -mask 255\.255\.255\.255$/m);
    expect(readFileSync(join(gone.host.root, "usr/local/etc/stunnel/stunnel.conf"), "utf8")).not.toContain("[nfs-r2]");
    expect(existsSync(join(gone.host.root, "usr/local/etc/stunnel/ca/clients/r2.pem"))).toBe(false);

    const added = await releases(() => pinned, withoutR2(pinned));
    const came = upgrade("f1", added.v1, added.v2);
    expect(changeLines(came.applied.stdout, "changed")).toContain("added 127.0.1.3/32 to lo0 (a client's own source address towards nfsd)");
    expect(lo0(came.host)).toEqual(["127.0.1.1", "127.0.1.2", "127.0.1.4", "127.0.1.3"]);

    // r1 mounts one more export: its one line lists both; nobody else's line changes.
    const more = await releases(withR1Media, pinned);
    const changed = upgrade("f0", more.v1, more.v2);
    expect(exportsLines(changed.host)).toEqual([
      "/data/nfs/k3svolumes -maproot=root -network 127.0.1.1 -mask 255.255.255.255",
      "/data/nfs/media /data/nfs/k3svolumes -maproot=root -network 127.0.1.2 -mask 255.255.255.255",
      "/data/nfs/k3svolumes -maproot=root -network 127.0.1.3 -mask 255.255.255.255",
      "/data/nfs -maproot=root -network 127.0.1.4 -mask 255.255.255.255",
    ]);
    expect(changeLines(changed.applied.stdout, "changed")).toContain("reloaded mountd for /etc/exports");
  });

  it("export datasets turned on, then an export added: the primary creates each one's dataset and the lines follow; v1 then v2 equals a fresh v2", async () => {
    const on = (s: string) => s.replace(/^( +)tlsPort: .*$/m, "$&\n$1exportDatasets: true");
    const turned = await releases(on);
    const first = upgrade("f0", turned.v1, turned.v2);
    expect(changeLines(first.applied.stdout, "changed")).toContain("created zdata/enc/nfsdata/k3svolumes: the export /data/nfs/k3svolumes is a file system of its own (only its clients reach it)");
    expect(readFileSync(join(first.host.root, "usr/local/etc/zrepl/zrepl.yml"), "utf8")).toContain('"zdata/enc/nfsdata<": true');
    upgrade("f1", turned.v1, turned.v2);

    const more = await releases(withR1Media, on(exampleSpec));
    const added = upgrade("f0", more.v1, more.v2);
    expect(changeLines(added.applied.stdout, "changed")).toEqual(expect.arrayContaining(["created zdata/enc/nfsdata/media: the export /data/nfs/media is a file system of its own (only its clients reach it)", "reloaded mountd for /etc/exports"]));
    // One line per client and file system; the laptop reaches the datasets below its export.
    expect(exportsLines(added.host)).toEqual([
      "/data/nfs/k3svolumes -maproot=root -network 127.0.1.1 -mask 255.255.255.255",
      "/data/nfs/k3svolumes -maproot=root -network 127.0.1.2 -mask 255.255.255.255",
      "/data/nfs/media -maproot=root -network 127.0.1.2 -mask 255.255.255.255",
      "/data/nfs/k3svolumes -maproot=root -network 127.0.1.3 -mask 255.255.255.255",
      "/data/nfs -maproot=root -network 127.0.1.4 -mask 255.255.255.255",
      "/data/nfs/k3svolumes -maproot=root -network 127.0.1.4 -mask 255.255.255.255",
      "/data/nfs/media -maproot=root -network 127.0.1.4 -mask 255.255.255.255",
    ]);
  });

  it("a mount removed from a client: its unit is stopped, disabled and deleted after the new files are in place (the monitor no longer knows it) and before any unit starts", async () => {
    const v1Spec = exampleSpec.replace(
      "  - name: r0\n    mounts:\n",
      "  - name: r0\n    mounts:\n      - export: /data/nfs/media\n        mountpoint: /mnt/media\n",
    );
    const { v1, v2 } = await releases(() => exampleSpec, v1Spec);
    const { host, applied } = upgrade("r0", v1, v2);
    const changes = changeLines(applied.stdout, "changed");
    const stopped = changes.indexOf("stopped and disabled mnt-media.mount");
    expect(stopped).toBeGreaterThan(changes.indexOf("updated /usr/local/bin/check-nfs-mount.sh"));
    expect(changes.slice(0, stopped).every((c) => /^(installed|updated) /.test(c)), changes.join("\n")).toBe(true);
    expect(changes).toContain("removed /etc/systemd/system/mnt-media.mount (no longer in the spec)");
    expect(changes.indexOf("systemd reloaded the f3s units")).toBeGreaterThan(stopped);
    expect(host.sb.has("enabled/mnt-media.mount")).toBe(false);
    expect(host.sb.has("active/mnt-media.mount")).toBe(false);
  });

  it("a Debian client: f3s-gen's own f3s-stunnel.service runs the tunnel; a mount added later equals a fresh deploy", async () => {
    const debian = (spec: string) => spec.replace("  - name: r0\n", "  - name: r0\n    os: debian\n");
    const withMedia = (spec: string) => spec.replace("  - name: r0\n    os: debian\n    mounts:\n", "  - name: r0\n    os: debian\n    mounts:\n      - export: /data/nfs/media\n        mountpoint: /mnt/media\n");
    const { v1, v2 } = await releases((s) => withMedia(s), debian(exampleSpec));
    const { host, applied } = upgrade("r0", v1, v2);
    expect(changeLines(applied.stdout, "changed")).toContain("started mnt-media.mount");
    for (const unit of ["f3s-stunnel.service", "f3s-tunnel-guard.service", "data-nfs-k3svolumes.mount", "mnt-media.mount"]) {
      expect(host.sb.has(`enabled/${unit}`), unit).toBe(true);
      expect(host.sb.has(`active/${unit}`), unit).toBe(true);
    }
    expect(host.sb.has("enabled/stunnel.service")).toBe(false);
    expect(existsSync(join(host.root, "etc/f3s/stunnel.conf"))).toBe(true);
    expect(existsSync(join(host.root, "etc/stunnel/stunnel.conf")), "nothing for the stunnel4 script to start twice").toBe(false);
  });

  it("restartStuckPods: activation says when the kubeconfig is missing or cannot list this node's pods, and the monitor uses the spec's kubeconfig", async () => {
    // r0 as a k3s agent: no /etc/rancher/k3s/k3s.yaml there.
    const { v1, v2 } = await releases((s) => s.replace("  - name: r0\n", "  - name: r0\n    kubeconfig: /etc/f3s/kubeconfig\n"));
    const agent = new Host("r0");
    const first = agent.deploy(v1);
    expect(first.stderr).toContain("WARNING: restartStuckPods: no kubeconfig at /etc/rancher/k3s/k3s.yaml (k3s agents have none): set clients[].kubeconfig in the spec");
    // v2 names one; it exists, but the API does not list pods (the stand-in kubectl fails without pods).
    mkdir(join(agent.root, "etc/f3s"));
    writeFileSync(join(agent.root, "etc/f3s/kubeconfig"), "apiVersion: v1\n", { mode: 0o600 });
    agent.extract(join(v2, "r0.tar.gz"));
    const second = agent.activate();
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`WARNING: restartStuckPods: kubectl with /etc/f3s/kubeconfig cannot list the pods of node r0`);
    expect(agent.sb.calls()).toContain("kubectl get pods --all-namespaces --field-selector spec.nodeName=r0");
    // Pods listed: no warning. The monitor exports the spec's kubeconfig.
    agent.sb.set("pods", "");
    expect(agent.activate().stderr).not.toContain("restartStuckPods");
    expect(readFileSync(join(agent.root, "usr/local/bin/check-nfs-mount.sh"), "utf8")).toContain("export KUBECONFIG='/etc/f3s/kubeconfig'");
    // v1 then v2 leaves the agent as a fresh v2 would (with the same kubeconfig).
    const fresh = new Host("r0");
    mkdir(join(fresh.root, "etc/f3s"));
    writeFileSync(join(fresh.root, "etc/f3s/kubeconfig"), "apiVersion: v1\n", { mode: 0o600 });
    fresh.sb.set("pods", "");
    expect(fresh.deploy(v2).stderr).not.toContain("restartStuckPods");
    expect(agent.state(), "v1 then v2 equals a fresh v2").toEqual(fresh.state());
  });

  it("a client moved from Rocky to Debian: the distribution's stunnel.service is stopped and disabled, f3s-stunnel.service takes over", async () => {
    const { v1, v2 } = await releases((s) => s.replace("  - name: r0\n", "  - name: r0\n    os: debian\n"));
    const { host, applied } = upgrade("r0", v1, v2);
    const changes = changeLines(applied.stdout, "changed");
    expect(changes).toContain("stopped and disabled the NFS tunnel (stunnel.service)");
    expect(changes).toContain("started f3s-stunnel.service");
    expect(host.sb.has("active/stunnel.service")).toBe(false);
    expect(host.sb.has("active/f3s-stunnel.service")).toBe(true);
  });

  it("redirectNfsPort turned off: the DNAT unit is stopped (its rule removed), disabled and deleted with its script", async () => {
    const { v1, v2 } = await releases((s) => s.replace(/\n\s*redirectNfsPort: true.*/, ""));
    const { host, applied } = upgrade("earth", v1, v2);
    expect(changeLines(applied.stdout, "changed")).toEqual(expect.arrayContaining([
      "stopped and disabled f3s-nfs-dnat.service",
      "removed /etc/systemd/system/f3s-nfs-dnat.service (no longer in the spec)",
      "removed /usr/local/sbin/f3s-nfs-dnat (no longer in the spec)",
    ]));
    expect(host.sb.calls()).toContain("systemctl disable --now f3s-nfs-dnat.service");
  });

  it("failback disabled: the cron job and its script leave the primary", async () => {
    const { v1, v2 } = await releases((s) => s.replace("enabled: true", "enabled: false"));
    const { host, applied } = upgrade("f0", v1, v2);
    expect(changeLines(applied.stdout, "changed")).toEqual(expect.arrayContaining([
      "removed /usr/local/etc/cron.d/carp-auto-failback (no longer in the spec)",
      "removed /usr/local/bin/carp-auto-failback.sh (no longer in the spec)",
      "removed /usr/local/etc/newsyslog.conf.d/carp-auto-failback.conf (no longer in the spec)",
    ]));
    expect(existsSync(join(host.root, "usr/local/etc/cron.d/carp-auto-failback"))).toBe(false);
  });

  it("a new VIP: the old alias is removed, the new one added, names and DNAT follow", async () => {
    // A new VIP needs a server certificate for it: the build says so and names `pki renew server`.
    const { v1, v2 } = await releases((s) => s.replace("address: 192.168.1.138", "address: 192.168.1.139"), exampleSpec, async (spec, secretsDir) => {
      const specPath = join(tempDir(), "spec.yaml");
      writeFileSync(specPath, spec);
      const io = { stdout: () => {}, stderr: () => {}, isTTY: false, env: {}, cwd: tempDir(), now: () => new Date() };
      expect(await runMain(["pki", "renew", specPath, "server", "--secrets", secretsDir], io)).toBe(0);
    });
    for (const name of ["f0", "f1"]) {
      const { host, applied } = upgrade(name, v1, v2);
      expect(changeLines(applied.stdout, "changed")).toEqual(expect.arrayContaining([
        "removed the previous CARP VIP 192.168.1.138 from re0",
        "CARP VIP 192.168.1.139 on re0",
      ]));
      expect(host.sb.read("if/re0")).not.toContain("192.168.1.138");
    }
    const { host, applied } = upgrade("earth", v1, v2);
    expect(changeLines(applied.stdout, "changed")).toEqual(expect.arrayContaining(["reloaded stunnel for its new configuration", "renewed the NFS DNAT rule"]));
    expect(readFileSync(join(host.root, "etc/hosts"), "utf8")).toContain("192.168.1.139 f3s-storage-ha");
    upgrade("f2", v1, v2);
  });

  it.each([
    ["password", (s: string) => s.replace("password: testpass", "password: N3wCarpPass"), "CARP vhid 1 on re0: and a new password"],
    ["advskew", (s: string) => s.replace(/( +)replicationAddress: 192\.168\.2\.130.*\n/, (line, indent: string) => `${line}${indent}advskew: 10\n`), "CARP vhid 1 on re0: advskew 10"],
    ["advbase", (s: string) => s.replace(/( +)vhid: 1\n/, (line, indent: string) => `${line}${indent}advbase: 2\n`), "CARP vhid 1 on re0: advbase 2"],
  ])("a changed CARP %s is applied in place", async (_what, change, expected) => {
    const { v1, v2 } = await releases(change);
    const { applied } = upgrade("f0", v1, v2);
    expect(changeLines(applied.stdout, "changed")).toContain(expected);
  });

  it("a changed vhid re-adds the VIP, after devd was restarted for the new notify block", async () => {
    const { v1, v2 } = await releases((s) => s.replace("vhid: 1", "vhid: 7"));
    const { host, applied } = upgrade("f0", v1, v2);
    const changes = changeLines(applied.stdout, "changed");
    const devd = changes.indexOf("restarted devd for the CARP notify block");
    const vip = changes.indexOf("CARP VIP 192.168.1.138: vhid 1 changed to 7 (re-added)");
    expect(devd).toBeGreaterThanOrEqual(0);
    expect(vip).toBeGreaterThan(devd);
    expect(host.sb.read("if/re0")).toMatch(/carp: \w+ vhid 7 /);
  });

  it("a changed domain restarts a running nfsuserd (it reads its -domain flag only at start)", async () => {
    // f3s-gen refuses a domain change for the same secrets (it is another cluster's identity, and
    // every certificate names the domain), so v2 is built apart; the host-side rule holds regardless.
    const { v1 } = await releases((s) => s);
    const v2 = keep(await release(exampleSpec.replace("domain: lan.buetow.org", "domain: storage.example.net"), join(tempDir(), "out"), join(tempDir(), "secrets")));
    const f0 = new Host("f0");
    f0.deploy(v1);
    f0.becomeMaster();
    expect(f0.sb.has("running/nfsuserd")).toBe(true);
    // The key stick holds the keys under the new names too (keys.tar.gz of v2).
    for (const k of ["f0.storage.example.net:zdata.key", "f0.storage.example.net:bhyve.key"]) writeFileSync(join(f0.root, "keys", k), Buffer.alloc(32, 7), { mode: 0o400 });
    f0.extract(join(v2, "f0.tar.gz"));
    const r = f0.activate();
    expect(r.code, r.stderr).toBe(0);
    expect(changeLines(r.stdout, "changed")).toContain("restarted nfsuserd for its new flags (the NFSv4 domain)");
    expect(f0.activate().stdout).toContain("nothing changed");
  });

  it("a member removed from the spec is decommissioned: its hosts line goes, nothing else was there", async () => {
    const { v1, v2 } = await releases((s) => s.replace(/\nmembers:[\s\S]*$/, "\n"));
    const f2 = new Host("f2");
    const pristine = f2.state();
    f2.deploy(v1);
    f2.extract(join(v2, "retired/f2.tar.gz"));
    const done = f2.run("usr/local/sbin/f3s-decommission");
    expect(done.code, done.stderr).toBe(0);
    expect(f2.state()).toEqual(pristine);
    // Still retired in the next build, until it is back in the spec.
    const secretsDir = privateSecrets("example");
    const outDir = join(tempDir(), "out");
    execFileSync("cp", ["-a", v2, outDir]);
    await release(exampleSpec.replace(/\nmembers:[\s\S]*$/, "\n"), outDir, secretsDir);
    expect(readdirSync(join(outDir, "retired"))).toEqual(["f2.tar.gz"]);
    await release(exampleSpec, outDir, secretsDir);
    expect(existsSync(join(outDir, "retired"))).toBe(false);
  });

  it("a renamed standby: the old node is decommissioned (VIP removed, services stopped), its data untouched", async () => {
    const { v1, v2 } = await releases((s) => s.replace(/name: f1\b/, "name: f3"));
    const f1 = new Host("f1");
    f1.deploy(v1);
    for (const s of ["stunnel", "nfsd", "mountd", "nfsuserd", "rpcbind"]) f1.sb.set(`running/${s}`);
    const datasets = listFiles(join(f1.sb.state, "zfs"));
    const callsBefore = f1.sb.calls().length;
    f1.extract(join(v2, "retired/f1.tar.gz"));
    const done = f1.run("usr/local/sbin/f3s-decommission");
    expect(done.code, done.stderr).toBe(0);
    expect(changeLines(done.stdout, "changed")).toEqual(expect.arrayContaining([
      "removed the CARP VIP 192.168.1.138 from re0", "stopped stunnel", "stopped nfsd", "stopped zrepl", "stopped rpcbind", "restarted devd without the CARP notify block",
    ]));
    expect(f1.sb.read("if/re0")).not.toContain("192.168.1.138");
    expect(listFiles(join(f1.sb.state, "zfs"))).toEqual(datasets);
    expect(f1.sb.calls().slice(callsBefore).filter((c) => /^zfs /.test(c))).toEqual([]);
    // What the host had before f3s-gen: data, the key stick, the packages' rc scripts, /etc.
    expect(listFiles(f1.root).filter((f) => !/^(data|keys)\/|^usr\/local\/etc\/rc\.d\/(zrepl|stunnel)$/.test(f))).toEqual(["etc/devd.conf", "etc/fstab", "etc/hosts"]);
    rmSync(f1.root, { recursive: true, force: true });
  });
});

describe.skipIf(!ready)("f3s-activate --check, --verify, --help", () => {
  it("--check on a fresh host lists every change, changes nothing, exits 3", async () => {
    const { v1 } = await releases((s) => s);
    const host = new Host("r0");
    host.extract(join(v1, "r0.tar.gz"));
    const before = host.state();
    const r = host.activate(["--check"]);
    expect(r.code).toBe(3);
    expect(changeLines(r.stdout, "would")).toContain("started data-nfs-k3svolumes.mount");
    expect(host.state()).toEqual(before);
    expect(host.sb.calls()).toEqual([]);
  });

  it("--verify lists files modified, missing or with another mode (exit 3), and passes an intact install", async () => {
    const { v1 } = await releases((s) => s);
    for (const name of ["f0", "r0"]) {
      const host = new Host(name);
      host.deploy(v1);
      const ok = host.activate(["--verify"]);
      expect(ok.code, ok.stdout).toBe(0);
      expect(ok.stdout).toMatch(/all \d+ files of release [0-9a-f]{16} are as installed/);
    }
    const host = new Host("f0");
    host.deploy(v1);
    writeFileSync(join(host.root, "etc/exports"), "edited by hand\n");
    rmSync(join(host.root, "usr/local/bin/carp"));
    execFileSync("chmod", ["0644", join(host.root, "etc/rc.conf.d/netif")]);
    const r = host.activate(["--verify"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain("modified: /etc/exports");
    expect(r.stdout).toContain("missing: /usr/local/bin/carp");
    expect(r.stdout).toContain("mode 644 instead of 600: /etc/rc.conf.d/netif");
  });

  it("--help prints the usage; an unknown argument is a usage error that changes nothing", async () => {
    const { v1 } = await releases((s) => s);
    for (const name of ["f0", "r0", "f2"]) {
      const host = new Host(name);
      host.extract(join(v1, `${name}.tar.gz`));
      const help = host.activate(["--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^Usage: f3s-activate \[--check\] \[--diff\] \[--rollback\] \| --verify \| --help/);
      const before = host.state();
      for (const args of [["--bogus"], ["--check", "--verify"], ["apply"]]) {
        const r = host.activate(args);
        expect(r.code, args.join(" ")).toBe(2);
        expect(r.stderr).toMatch(/^Usage: f3s-activate/);
      }
      expect(host.state()).toEqual(before);
      expect(host.sb.calls()).toEqual([]);
    }
  });
});

describe.skipIf(!ready)("storage boot files", () => {
  it("a key stick in the spec gets a failok fstab line that replaces the hand-made one; without it a line lacking failok is warned about", async () => {
    const withDevice = exampleSpec.replace(/( +)keyDirectory: \/keys.*\n/, (line, indent: string) => `${line}${indent}keyDevice: /dev/da0\n`);
    expect(withDevice).toContain("keyDevice: /dev/da0");
    const { v1, v2 } = await releases(() => withDevice);
    const blogLine = "/dev/da0 /keys ufs rw 0 2\n";
    const plain = new Host("f0");
    writeFileSync(join(plain.root, "etc/fstab"), readFileSync(join(plain.root, "etc/fstab"), "utf8") + blogLine);
    const warned = plain.deploy(v1);
    expect(warned.stderr).toMatch(/\/etc\/fstab mounts \/keys without failok/);
    plain.extract(join(v2, "f0.tar.gz"));
    const r = plain.activate();
    expect(r.stderr).not.toMatch(/without failok/);
    const fstab = readFileSync(join(plain.root, "etc/fstab"), "utf8");
    expect(fstab).not.toContain(blogLine);
    expect(fstab).toContain("# BEGIN f3s-gen (managed by f3s-activate)\n/dev/da0\t/keys\tufs\tro,failok\t0\t0\n# END f3s-gen\n");
    expect(fstab).toContain("/dev/gpt/swap0\tnone\tswap");
  });

  it("numeric NFSv4 owners: sysctl.conf.local gets its block once and the live values are set", async () => {
    const { v1 } = await releases((s) => s);
    const host = new Host("f1");
    const r = host.deploy(v1);
    expect(r.stdout).toContain("changed: vfs.nfs.enable_uidtostring=1");
    expect(readFileSync(join(host.root, "etc/sysctl.conf.local"), "utf8")).toBe(
      "# BEGIN f3s-gen (managed by f3s-activate)\n" + readFileSync(join(host.root, "usr/local/share/f3s/sysctl.conf"), "utf8") + "# END f3s-gen\n",
    );
    expect(host.sb.read("sysctl/vfs.nfsd.enable_stringtouid").trim()).toBe("1");
  });

  it("the standby sets readonly before the mountpoint (which mounts the dataset)", async () => {
    const { v1 } = await releases((s) => s);
    const host = new Host("f1");
    host.deploy(v1);
    const zfs = host.sb.calls().filter((c) => c.startsWith("zfs set") && c.endsWith("zdata/sink/f0/zdata/enc/nfsdata"));
    expect(zfs.findIndex((c) => c.includes("readonly=on"))).toBeLessThan(zfs.findIndex((c) => c.includes("mountpoint=")));
  });

  it("a hand-over's raised advskew is left alone by activation until `carp master`", async () => {
    const { v1 } = await releases((s) => s);
    const host = new Host("f0");
    host.deploy(v1);
    host.becomeMaster();
    mkdir(join(host.root, "var/run"));
    const carp = host.sb.script(join(host.root, "usr/local/bin/carp"), { SETTLE_SECONDS: "0", HANDOVER_FILE: join(host.root, "var/run/f3s-carp-handover") });
    host.sb.run("dash", carp, ["backup"]);
    const r = host.activate();
    expect(r.stdout).toContain("advskew is 254 for a hand-over (carp backup); carp master restores 0");
    expect(host.sb.read("if/re0")).toMatch(/advskew 254/);
  });
});
