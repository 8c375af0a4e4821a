// Releases on the host: extraction stages a release and changes nothing live; f3s-activate checks
// (preflight), installs (each file renamed into place, files found there kept) and applies it;
// --check and --diff change nothing at all; --rollback goes back; a kill at any step leaves the
// host on one release or the other and the next run finishes. Simulated hosts as in
// lifecycle.test.ts: an extracted root and the stateful stand-ins of test/stubs; the installed
// f3s-activate itself runs, unchanged.
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { hasTool, listFiles, privateSecrets, tempDir } from "./support.js";
import { Host, changeLines, keep, release } from "./host-harness.js";
import { mutating } from "./script-harness.js";

const ready = hasTool("dash", ["-c", "true"]) && hasTool("flock", ["--version"]) && hasTool("setsid", ["--version"]);
const exampleSpec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");
const stateOf = (name: string) => (name.startsWith("f") ? "var/db/f3s" : "var/lib/f3s");

/** Builds the specs in turn into one out/ with one secrets directory, keeping each release's out/. */
async function releases(...specs: string[]): Promise<string[]> {
  const secretsDir = privateSecrets("example");
  const outDir = join(tempDir(), "out");
  const kept: string[] = [];
  for (const spec of specs) kept.push(keep(await release(spec, outDir, secretsDir)));
  return kept;
}

/** Every file under the root with its hash, as a map (for "byte for byte" comparisons). */
function files(root: string): Map<string, string> {
  return new Map(listFiles(root).map((f) => [f, createHash("sha256").update(readFileSync(join(root, f))).digest("hex")]));
}

/** Paths whose content differs between two snapshots (added, removed or changed). */
function changedPaths(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((p) => a.get(p) !== b.get(p)).sort();
}

/** Deploys v1 to a fresh host; the primary becomes MASTER as the kernel would make it. */
function deployed(name: string, out: string): Host {
  const host = new Host(name);
  host.deploy(out);
  if (name === "f0") host.becomeMaster();
  return host;
}

const cleanupChanges = (stdout: string) => changeLines(stdout, "changed");

/** A change that gives every host of the example a new release (each reads a textfile directory). */
const everyHostChanged = (spec: string) =>
  spec.replace(/\nclients:/, "\nmonitoring:\n  storageTextfileDirectory: /var/db/f3s-metrics\n  clientTextfileDirectory: /var/lib/f3s-metrics\nclients:");

describe.skipIf(!ready)("extraction stages a release and changes nothing live", () => {
  it.each(["f0", "f1", "r0", "earth", "f2"])("%s: a first extraction adds only the release, its name and f3s-activate; a second changes nothing outside the release", async (name) => {
    const [v1, v2] = await releases(exampleSpec, everyHostChanged(exampleSpec));
    const host = new Host(name);
    const pristine = files(host.root);
    host.extract(join(v1!, `${name}.tar.gz`));
    const state = stateOf(name);
    const added = changedPaths(pristine, files(host.root));
    expect(added.filter((p) => !p.startsWith(`${state}/releases/`))).toEqual(["usr/local/sbin/f3s-activate", `${state}/staged`]);
    expect(host.sb.calls(), "extracting runs nothing").toEqual([]);

    host.activate();
    if (name === "f0") host.becomeMaster();
    const activated = files(host.root);
    const calls = host.sb.calls().length;
    host.extract(join(v2!, `${name}.tar.gz`));
    const changed = changedPaths(activated, files(host.root));
    // Only the new release's directory and the name of the staged release: /etc, /usr/local (the
    // f3s-activate it brings has the same bytes), /boot and everything else as they were.
    expect(changed.filter((p) => !p.startsWith(`${state}/releases/`))).toEqual([`${state}/staged`]);
    expect(changed.some((p) => p.startsWith(`${state}/releases/`)), "the new release is staged").toBe(true);
    expect(host.sb.calls().length).toBe(calls);
  });
});

describe.skipIf(!ready)("--check and --diff", () => {
  it("predict the run exactly, change nothing at all, and never show a secret", async () => {
    const v2Spec = exampleSpec.replace("password: testpass", "password: N3wCarpPass").replace(/  - name: r2\n(.*\n){4}/, "").replace("tlsPort: 2323", "tlsPort: 2324");
    const [v1, v2] = await releases(exampleSpec, v2Spec);
    for (const name of ["f0", "r0"]) {
      const host = deployed(name, v1!);
      host.extract(join(v2!, `${name}.tar.gz`));
      const before = host.state();
      const check = host.activate(["--check"]);
      const diff = host.activate(["--diff"]);
      const both = host.activate(["--check", "--diff"]);
      expect(host.state(), "--check and --diff change nothing").toEqual(before);
      expect(check.code).toBe(3);
      expect(diff.code).toBe(3);
      expect(changeLines(diff.stdout, "would")).toEqual(changeLines(check.stdout, "would"));
      expect(both.stdout).toBe(diff.stdout);
      const run = host.activate();
      expect(run.code, run.stderr).toBe(0);
      expect(changeLines(check.stdout, "would"), `${name}: --check predicts the run`).toEqual(cleanupChanges(run.stdout));
      expect(diff.stdout).not.toContain("N3wCarpPass");
      expect(diff.stdout).not.toContain("testpass");
      if (name === "f0") {
        expect(diff.stdout).toMatch(/would: updated \/etc\/rc\.conf\.d\/netif\n {4}\(holds a secret: contents not shown\)/);
        expect(diff.stdout).toMatch(/would: updated \/usr\/local\/etc\/stunnel\/stunnel\.conf\n {4}--- \/usr\/local\/etc\/stunnel\/stunnel\.conf \(installed\)\n {4}\+\+\+ \/usr\/local\/etc\/stunnel\/stunnel\.conf \(release [0-9a-f]{16}\)/);
        expect(diff.stdout).toMatch(/^ {4}-accept = 192\.168\.1\.138:2324$/m);
        expect(diff.stdout).toMatch(/^ {4}\+accept = 192\.168\.1\.138:2325$/m);
        // r2's own allow-list leaves with it; the other clients' lists are unchanged.
        expect(diff.stdout).toMatch(/would: removed \/usr\/local\/etc\/stunnel\/ca\/clients\/r2\.pem \(no longer in the spec\)/);
        expect(diff.stdout).not.toMatch(/would: updated \/usr\/local\/etc\/stunnel\/ca\/clients\//);
        expect(diff.stdout).not.toMatch(/PRIVATE KEY/);
      } else {
        expect(diff.stdout).toMatch(/^ {4}\+Options=port=2324,/m);
      }
    }
  });

  it("--check on a host where nothing changed says so and exits 0", async () => {
    const [v1] = await releases(exampleSpec);
    const host = deployed("f0", v1!);
    const r = host.activate(["--check"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/f0 is up to date with release [0-9a-f]{16}: nothing would change/);
  });

  it("--check does not delete the failback job's stamp when failback leaves (the run does)", async () => {
    const [v1, v2] = await releases(exampleSpec, exampleSpec.replace("enabled: true", "enabled: false"));
    const host = deployed("f0", v1!);
    mkdirSync(join(host.root, "var/run"), { recursive: true });
    writeFileSync(join(host.root, "var/run/carp-auto-failback.backup"), "1\n");
    host.extract(join(v2!, "f0.tar.gz"));
    host.activate(["--check"]);
    expect(existsSync(join(host.root, "var/run/carp-auto-failback.backup"))).toBe(true);
    host.activate();
    expect(existsSync(join(host.root, "var/run/carp-auto-failback.backup"))).toBe(false);
  });
});

describe.skipIf(!ready)("preflight", () => {
  it("a storage node without its packages, pool, key stick or datasets: every missing piece with its fix, nothing changed", async () => {
    const [v1] = await releases(exampleSpec);
    const host = new Host("f0");
    // A new node: nothing of what the README asks to prepare by hand.
    host.sb.hide(["zrepl"]);
    for (const f of ["usr/local/etc/rc.d/zrepl", "usr/local/etc/rc.d/stunnel"]) rmFile(join(host.root, f));
    rmDir(join(host.root, "keys"));
    rmDir(join(host.sb.state, "zpool"));
    rmDir(join(host.sb.state, "zfs"));
    host.extract(join(v1!, "f0.tar.gz"));
    const before = host.state();
    for (const args of [[], ["--check"]]) {
      const r = host.activate(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stdout).not.toMatch(/changed:|would:/);
      const problems = r.stderr.split("\n");
      for (const [problem, fix] of [
        ["not installed: zrepl stunnel", "pkg install -y zrepl stunnel"],
        ["ZFS pool zdata does not exist", "zpool create zdata <devices>"],
        ["ZFS pool zroot does not exist", "zpool create zroot <devices>"],
        ["the key directory /keys does not exist", "mount the key stick on /keys"],
        ["the key of zdata/enc, /keys/f0.lan.buetow.org:zdata.key, is missing", "tar -xzpf keys.tar.gz -C /keys"],
        ["the key of zroot/bhyve, /keys/f0.lan.buetow.org:bhyve.key, is missing", "tar -xzpf keys.tar.gz -C /keys"],
        ["encryption root zdata/enc does not exist", "zfs create -o encryption=on -o keyformat=raw -o keylocation=file:///keys/f0.lan.buetow.org:zdata.key zdata/enc"],
        ["the NFS dataset zdata/enc/nfsdata does not exist", "zfs create zdata/enc/nfsdata"],
      ]) {
        const at = problems.findIndex((l) => l.startsWith("f3s-activate: preflight: ") && l.includes(problem!));
        expect(at, `${problem}\n${r.stderr}`).toBeGreaterThanOrEqual(0);
        expect(problems[at + 1], problem).toMatch(/^  fix: /);
        expect(problems[at + 1], problem).toContain(fix);
      }
      expect(r.stderr).toMatch(/ERROR: \d+ preflight problem\(s\) above: nothing was changed/);
      expect(host.state()).toEqual(before);
      expect(host.sb.calls().filter((c) => mutating.test(c))).toEqual([]);
    }
  });

  it("the standby needs the primary's key for the received dataset and its sink root", async () => {
    const [v1] = await releases(exampleSpec);
    const host = new Host("f1");
    rmFile(join(host.root, "keys/f0.lan.buetow.org:zdata.key"));
    rmDir(join(host.sb.state, "zfs/zdata%sink"));
    host.extract(join(v1!, "f1.tar.gz"));
    const r = host.activate();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("preflight: the key of zdata/sink/f0/zdata/enc/nfsdata, /keys/f0.lan.buetow.org:zdata.key, is missing");
    expect(r.stderr).toContain("preflight: the sink root zdata/sink (where zrepl receives the primary's datasets) does not exist\n  fix: zfs create zdata/sink");
  });

  it("a client without the NFS client: named with the distribution's install command, nothing changed", async () => {
    const debian = exampleSpec.replace("  - name: r0\n", "  - name: r0\n    os: debian\n");
    const [v1] = await releases(debian);
    for (const [name, install] of [["r0", "apt-get install -y stunnel4 nfs-common nftables"], ["r1", "dnf install -y stunnel nfs-utils nftables"]] as const) {
      const host = new Host(name);
      host.sb.hide(["mount.nfs4"]);
      host.extract(join(v1!, `${name}.tar.gz`));
      const before = host.state();
      const r = host.activate();
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`preflight: not installed: mount.nfs4\n  fix: ${install}`);
      expect(host.state()).toEqual(before);
    }
  });

  it("a damaged staged release is refused before anything changes", async () => {
    const [v1] = await releases(exampleSpec);
    const host = new Host("r0");
    host.extract(join(v1!, "r0.tar.gz"));
    const rel = join(host.root, "var/lib/f3s/releases", readFileSync(join(host.root, "var/lib/f3s/staged"), "utf8").trim());
    writeFileSync(join(rel, "etc/idmapd.conf"), "[General]\nDomain = evil\n");
    const before = host.state();
    const r = host.activate();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/release [0-9a-f]{16} is damaged \(.*: \/etc\/idmapd\.conf\): extract its tarball again/);
    expect(host.state()).toEqual(before);
  });
});

describe.skipIf(!ready)("files f3s-gen finds on the host", () => {
  it("a hand-made file is kept as <path>.f3s-orig and reported; it comes back when f3s-gen no longer installs the path", async () => {
    const [v1, v2] = await releases(exampleSpec, exampleSpec.replace(/  - name: r2\n(.*\n){4}/, ""));
    const host = new Host("r2");
    const handMade = "[General]\nDomain = example.org\n# made by hand\n";
    mkdirSync(join(host.root, "etc"), { recursive: true });
    writeFileSync(join(host.root, "etc/idmapd.conf"), handMade);
    const pristine = host.state();
    host.extract(join(v1!, "r2.tar.gz"));
    const check = host.activate(["--check"]);
    expect(changeLines(check.stdout, "would")).toContain("took over /etc/idmapd.conf (the file found there is kept as /etc/idmapd.conf.f3s-orig)");
    const r = host.activate();
    expect(changeLines(r.stdout, "changed")).toEqual(changeLines(check.stdout, "would"));
    expect(readFileSync(join(host.root, "etc/idmapd.conf.f3s-orig"), "utf8")).toBe(handMade);
    expect(readFileSync(join(host.root, "etc/idmapd.conf"), "utf8")).toContain("Domain = lan.buetow.org");
    expect(host.activate().stdout).toMatch(/nothing changed/);
    // r2 leaves the spec: decommissioning gives the host its own file back.
    host.extract(join(v2!, "retired/r2.tar.gz"));
    const done = host.run("usr/local/sbin/f3s-decommission");
    expect(done.code, done.stderr).toBe(0);
    expect(changeLines(done.stdout, "changed")).toContain("restored /etc/idmapd.conf from /etc/idmapd.conf.f3s-orig (the file f3s-gen found there)");
    expect(host.state()).toEqual(pristine);
  });
});

describe.skipIf(!ready)("--rollback", () => {
  const v2Of = (s: string) =>
    everyHostChanged(s).replace("enabled: true", "enabled: false").replace(/  - name: r2\n(.*\n){4}/, "").replace("password: testpass", "password: N3wCarpPass")
      .replace("  - name: r0\n    mounts:\n", "  - name: r0\n    mounts:\n      - export: /data/nfs/media\n        mountpoint: /mnt/media\n");

  it.each(["f0", "f1", "r0", "f2"])("%s: v1, then v2, then --rollback ends exactly where v1 alone does; a second --rollback changes nothing", async (name) => {
    const [v1, v2] = await releases(exampleSpec, v2Of(exampleSpec));
    const host = deployed(name, v1!);
    host.extract(join(v2!, `${name}.tar.gz`));
    expect(host.activate().code).toBe(0);
    if (name === "f0") host.settle();
    const before = host.state();
    const check = host.activate(["--rollback", "--check"]);
    expect(host.state(), "--rollback --check changes nothing").toEqual(before);
    const back = host.activate(["--rollback"]);
    expect(back.code, back.stderr).toBe(0);
    if (name === "f0") host.settle();
    expect(changeLines(check.stdout, "would")).toEqual(changeLines(back.stdout, "changed"));
    expect(back.stdout).toMatch(new RegExp(`${name} rolled back to release [0-9a-f]{16}`));
    const fresh = deployed(name, v1!);
    expect(host.state(), `${name}: v1, v2, rollback equals a fresh v1`).toEqual(fresh.state());

    const again = host.activate(["--rollback"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/was already rolled back to release [0-9a-f]{16} \(from [0-9a-f]{16}\): nothing changed/);
    expect(changeLines(again.stdout, "changed")).toEqual([]);
    // The staged release is the one rolled back to: a plain run does not bring v2 back.
    expect(host.activate().stdout).toMatch(/nothing changed/);
    // Extracting v2 again and activating moves on.
    host.extract(join(v2!, `${name}.tar.gz`));
    expect(changeLines(host.activate().stdout, "changed").length).toBeGreaterThan(0);
  });

  it("the primary rolls back its CARP password, failback job, allow-list and cron", async () => {
    const [v1, v2] = await releases(exampleSpec, v2Of(exampleSpec));
    const host = deployed("f0", v1!);
    host.extract(join(v2!, "f0.tar.gz"));
    host.activate();
    host.settle();
    const back = changeLines(host.activate(["--rollback"]).stdout, "changed");
    expect(back).toEqual(expect.arrayContaining([
      "installed /usr/local/bin/carp-auto-failback.sh",
      "installed /usr/local/etc/cron.d/carp-auto-failback",
      "CARP vhid 1 on re0: and a new password",
      "restarted stunnel for its new certificates or allowed clients (every TLS session ends; mounts reconnect)",
      "restarted cron for its changed cron.d files",
    ]));
    expect(host.sb.read("if/re0")).toContain('key "testpass"');
  });

  it("with nothing to roll back to, says so, exits 4 and changes nothing", async () => {
    const [v1] = await releases(exampleSpec);
    const fresh = new Host("r0");
    fresh.extract(join(v1!, "r0.tar.gz"));
    const none = fresh.activate(["--rollback"]);
    expect([none.code, none.stderr]).toEqual([4, "f3s-activate: nothing to roll back to: no release has been activated here\n"]);
    const host = deployed("r0", v1!);
    const before = host.state();
    const r = host.activate(["--rollback"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/nothing to roll back to: release [0-9a-f]{16} is the first activated here/);
    expect(host.state()).toEqual(before);
  });

  it("keeps the releases it can roll back to and at most the last three activated", async () => {
    const specs = [1, 2, 3, 4, 5].map((i) => exampleSpec.replace("tlsPort: 2323", `tlsPort: ${2323 + i}`));
    const outs = await releases(...specs);
    const host = deployed("r0", outs[0]!);
    for (const out of outs.slice(1)) host.deploy(out);
    const kept = readdirSync(join(host.root, "var/lib/f3s/releases"));
    expect(kept).toHaveLength(3);
    expect(kept).toContain(host.current());
    expect(kept).toContain(readFileSync(join(host.root, "var/lib/f3s/previous"), "utf8").trim());
  });
});

function rmFile(p: string) {
  rmSync(p, { force: true });
}
function rmDir(p: string) {
  rmSync(p, { recursive: true, force: true });
}
