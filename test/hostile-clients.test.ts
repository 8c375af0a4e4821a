// What a client can plant in the NFS root, and node_exporter's user in the textfile directory, against
// the real generated scripts in a sandbox (dash, the stand-ins of test/stubs; FreeBSD's mv -h is
// GNU mv's -T there): root writes through nothing they plant, and f3s-status still reports. Every
// client may write anywhere in the export (as root, with the default maproot=root), and the storage
// default textfile directory lies in world-writable /var/tmp.
import { describe, expect, it, beforeAll } from "vitest";
import { lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { buildCase, extract, hasTool, tempDir, type Built } from "./support.js";
import { Sandbox, carpInterface, loopbackOf } from "./script-harness.js";
import { Host, keep, release } from "./host-harness.js";
import { packageRoot } from "../src/paths.js";

const ready = hasTool("dash", ["-c", "true"]) && hasTool("mkfifo", ["--version"]);
let example: Built;
beforeAll(async () => {
  example = await buildCase("example");
});
const now = () => Math.floor(Date.now() / 1000);
/** A build of the example (ECDSA keys: fast) into a fresh out/ with fresh secrets. */
const exampleRelease = async () =>
  keep(await release(readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8").replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256"), join(tempDir(), "out"), join(tempDir(), "secrets")));

/** Files outside the NFS root that a hostile client points its links at. */
function victims() {
  const dir = tempDir("f3s-victim-");
  const file = join(dir, "rc.conf");
  writeFileSync(file, "hostname=f0\n");
  const emptyDir = join(dir, "etc");
  mkdirSync(emptyDir);
  return { dir, file, emptyDir, untouched: () => readFileSync(file, "utf8") === "hostname=f0\n" && readdirSync(emptyDir).length === 0 };
}

/** The primary's tree with the canary, carp and f3s-status ready to run against a sandbox. */
function primary() {
  const sb = new Sandbox();
  const root = extract(join(example.outDir, "f0.tar.gz"));
  const nfs = join(root, "data/nfs");
  mkdirSync(nfs, { recursive: true });
  writeFileSync(join(nfs, "nfs.DO_NOT_REMOVE"), "");
  const textfiles = join(sb.dir, "textfile");
  mkdirSync(textfiles);
  const canary = sb.script(join(root, "usr/local/sbin/f3s-canary"), { ROOT: root });
  const carp = sb.script(join(root, "usr/local/bin/carp"), { BLOCK_FILE: join(nfs, "nfs.NO_AUTO_FAILBACK") });
  const status = sb.script(join(root, "usr/local/sbin/f3s-status"), { ROOT: root, TEXTFILE_DIR: textfiles, CARP: carp });
  sb.set("if/re0", carpInterface("re0", "192.168.1.130", "192.168.1.138", 1, "MASTER"));
  sb.set("if/lo0", loopbackOf(root));
  for (const s of ["rpcbind", "nfsuserd", "mountd", "nfsd", "stunnel", "zrepl"]) sb.set(`running/${s}`);
  sb.dataset("zdata/enc");
  sb.dataset("zroot/bhyve");
  sb.dataset("zdata/enc/nfsdata", { mounted: "yes" });
  return { sb, root, nfs, textfiles, canary: () => sb.run("dash", canary), carp: (args: string[]) => sb.run("dash", carp, args), status: (args: string[] = []) => sb.run("dash", status, args) };
}

describe.skipIf(!ready)("a hostile client's links in the NFS root", () => {
  it("f3s-canary (root, every minute) writes through none of them and still writes the canary", () => {
    const p = primary();
    const v = victims();
    // The old fixed temporary name as a link to a file, and the canary's name as a link to a directory.
    symlinkSync(v.file, join(p.nfs, "nfs.LIVE_CHECK.new"));
    symlinkSync(v.emptyDir, join(p.nfs, "nfs.LIVE_CHECK"));
    const r = p.canary();
    expect(r.code, r.stderr).toBe(0);
    expect(v.untouched()).toBe(true);
    const canary = join(p.nfs, "nfs.LIVE_CHECK");
    expect(lstatSync(canary).isFile()).toBe(true);
    expect(Math.abs(Number(readFileSync(canary, "utf8")) - now())).toBeLessThan(5);
    expect(lstatSync(canary).mode & 0o777).toBe(0o644);
    // No temporary file is left behind.
    expect(readdirSync(p.nfs).sort()).toEqual(["nfs.DO_NOT_REMOVE", "nfs.LIVE_CHECK", "nfs.LIVE_CHECK.new"]);
  });

  it("carp auto-failback disable creates no file through a planted link (the link itself blocks failback)", () => {
    const p = primary();
    const v = victims();
    const target = join(v.dir, "nologin");
    symlinkSync(target, join(p.nfs, "nfs.NO_AUTO_FAILBACK"));
    const r = p.carp(["auto-failback", "disable"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/already disabled/);
    expect(readdirSync(v.dir).sort()).toEqual(["etc", "rc.conf"]);
    expect(p.carp(["auto-failback", "status"]).stdout.trim()).toBe("disabled");
    // Enable removes the link, not its target; disable then creates a plain empty file.
    expect(p.carp(["auto-failback", "enable"]).code).toBe(0);
    expect(v.untouched()).toBe(true);
    expect(p.carp(["auto-failback", "disable"]).code).toBe(0);
    expect(lstatSync(join(p.nfs, "nfs.NO_AUTO_FAILBACK")).isFile()).toBe(true);
  });

  it("activation refuses a planted link as the marker file rather than create its target", async () => {
    const out = await exampleRelease();
    const h = new Host("f0");
    const v = victims();
    const target = join(v.dir, "nologin");
    symlinkSync(target, join(h.root, "data/nfs/nfs.DO_NOT_REMOVE"));
    h.extract(join(out, "f0.tar.gz"));
    const r = h.activate();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/nfs\.DO_NOT_REMOVE is a symbolic link \(planted through NFS\?\): remove it/);
    expect(readdirSync(v.dir).sort()).toEqual(["etc", "rc.conf"]);
  });

  it.each([
    ["arithmetic that aborts the shell", "1+\n"],
    ["arithmetic that spoofs the limit", "(MAX_LAG=999999)\n"],
    ["a command substitution", "$(touch /tmp/f3s-pwned)\n"],
  ])("f3s-status reports a canary holding %s as degraded, and evaluates nothing", (_what, content) => {
    const p = primary();
    writeFileSync(join(p.nfs, "nfs.LIVE_CHECK"), content);
    const r = p.status(["--json"]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const checks = JSON.parse(r.stdout).checks.map((c: { level: string; check: string }) => `${c.level} ${c.check}`);
    expect(checks).toContain("degraded canary");
    expect(checks).toContain("ok carp");
  });

  it("f3s-status is not held up by a canary that is a FIFO or a link to an endless device", () => {
    for (const plant of [(f: string) => spawnSync("mkfifo", [f]), (f: string) => symlinkSync("/dev/zero", f)]) {
      const p = primary();
      plant(join(p.nfs, "nfs.LIVE_CHECK"));
      const started = Date.now();
      const r = p.status(["--json"]);
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(JSON.parse(r.stdout).checks.map((c: { level: string; check: string }) => `${c.level} ${c.check}`)).toContain("degraded canary");
    }
  });
});

describe.skipIf(!ready)("node_exporter's user in the textfile directory", () => {
  it("f3s-status --textfile writes through no planted link and leaves a readable f3s.prom", () => {
    const p = primary();
    const v = victims();
    writeFileSync(join(p.nfs, "nfs.LIVE_CHECK"), `${now()}\n`);
    // The old predictable temporary names, and f3s.prom itself as a link to a directory.
    for (let pid = 1; pid < 400; pid++) symlinkSync(v.file, join(p.textfiles, `.f3s.prom.${pid}`));
    symlinkSync(v.emptyDir, join(p.textfiles, "f3s.prom"));
    const r = p.status(["--textfile"]);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: "" });
    expect(v.untouched()).toBe(true);
    const prom = join(p.textfiles, "f3s.prom");
    expect(lstatSync(prom).isFile()).toBe(true);
    expect(lstatSync(prom).mode & 0o777).toBe(0o644);
    expect(readFileSync(prom, "utf8")).toMatch(/^f3s_carp_master 1$/m);
    expect(spawnSync("sh", ["-c", `ls -a '${p.textfiles}' | grep -c '^\\.f3s\\.prom\\.[0-9a-f]\\{16\\}$'`], { encoding: "utf8" }).stdout.trim()).toBe("0");
  });
});

describe("names from a directory listing", () => {
  it("a tarball in out/ whose name is not a host name is no retired host: nothing of its name reaches a script or the summary", async () => {
    const { HOST_NAME } = await import("../src/render/retired.js");
    const schema = JSON.parse(readFileSync(join(packageRoot, "schema/f3s.schema.json"), "utf8"));
    expect(HOST_NAME.source).toBe(schema.definitions.hostName.pattern);
    const { runMain } = await import("../src/cli.js");
    const dir = tempDir();
    const spec = join(dir, "spec.yaml");
    writeFileSync(spec, readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8").replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256"));
    const io = (lines: string[]) => ({ stdout: (s: string) => lines.push(s), stderr: (s: string) => lines.push(s), isTTY: false, env: {}, cwd: dir, now: () => new Date() });
    expect(await runMain(["build", spec], io([]))).toBe(0);
    // A real host's tarball under hostile names: a command substitution and terminal escapes.
    const out = join(dir, "out");
    const hostile = ["old$(touch pwned).tar.gz", "x\u001b]0;owned\u0007.tar.gz", "Upper.tar.gz"];
    for (const n of hostile) writeFileSync(join(out, n), readFileSync(join(out, "r2.tar.gz")));
    const printed: string[] = [];
    expect(await runMain(["build", spec], io(printed))).toBe(0);
    expect(printed.join("")).not.toMatch(/retired|\u001b|pwned|Upper/);
    expect(readdirSync(out)).not.toContain("retired");
  });
});

const nftReady = process.getuid?.() === 0 && hasTool("nft", ["--version"]) && spawnSync("unshare", ["-n", "true"]).status === 0;

describe.skipIf(!ready || !nftReady)("the client's tunnel guard after a firewall flush (the real nft, in a network namespace)", () => {
  it("f3s-status reports the guard broken once `nft flush ruleset` removed its table, ok while it is loaded", () => {
    const sb = new Sandbox();
    const root = extract(join(example.outDir, "r0.tar.gz"));
    // The real nft first on PATH; everything else the stand-ins.
    const real = join(sb.dir, "real");
    mkdirSync(real);
    symlinkSync(spawnSync("sh", ["-c", "command -v nft"], { encoding: "utf8" }).stdout.trim(), join(real, "nft"));
    sb.before.push(real);
    const status = sb.script(join(root, "usr/local/sbin/f3s-status"), { ROOT: root, TEXTFILE_DIR: join(sb.dir, "textfile") });
    const guard = join(root, "etc/f3s/tunnel-guard.nft");
    const r = spawnSync("unshare", ["-n", "bash", "-c", `nft -f '${guard}' && bash '${status}' --json; echo; nft flush ruleset && bash '${status}' --json`], { env: sb.env(), encoding: "utf8", timeout: 60_000 });
    const [loaded, flushed] = r.stdout.trim().split("\n{").map((s, i) => JSON.parse(i ? "{" + s : s));
    const guardCheck = (report: { checks: { level: string; check: string; message: string }[] }) => report.checks.find((c) => c.check === "guard")!;
    expect(guardCheck(loaded).level, r.stderr).toBe("ok");
    expect(guardCheck(flushed)).toMatchObject({ level: "broken" });
    expect(guardCheck(flushed).message).toMatch(/any local user can reach the tunnel/);
    expect(flushed.status).toBe("broken");
  });

  it("the guard's unit follows nftables.service (a reload or restart of the firewall loads it again)", () => {
    const root = extract(join(example.outDir, "r0.tar.gz"));
    const unit = readFileSync(join(root, "etc/systemd/system/f3s-tunnel-guard.service"), "utf8");
    for (const line of ["After=nftables.service", "PartOf=nftables.service", "ReloadPropagatedFrom=nftables.service", "ExecReload=/usr/sbin/nft -f /etc/f3s/tunnel-guard.nft"]) expect(unit).toContain(line);
  });
});

describe.skipIf(!ready)("activation and a flushed guard (stand-ins)", () => {
  it("f3s-activate loads the guard again when its table is gone, and a second run changes nothing", async () => {
    const out = await exampleRelease();
    const h = new Host("r0");
    h.sb.set("units/data-nfs-k3svolumes.mount", "/data/nfs/k3svolumes");
    h.deploy(out);
    h.sb.set("nft-flushed");
    const again = h.activate();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/changed: loaded the tunnel guard again \(its nftables table was gone/);
    expect(h.sb.has("nft-flushed")).toBe(false);
    expect(h.activate().stdout).not.toMatch(/changed:/);
  });
});

describe.skipIf(!ready)("the CARP password in activation's output", () => {
  it("a failing CARP step names the command with the password hidden", async () => {
    const out = await exampleRelease();
    const h = new Host("f0");
    h.sb.set("fail/ifconfig-carp");
    h.extract(join(out, "f0.tar.gz"));
    const r = h.activate();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERROR: CARP VIP 192\.168\.1\.138 on re0: 'ifconfig re0 inet vhid 1 advskew 0 pass \(hidden\) alias 192\.168\.1\.138\/32' failed/);
    expect(r.stdout + r.stderr).not.toContain("testpass");
  });
});
