// The builder under a hostile file system (issue 21): every file the CLI opens may have been
// replaced by a link, a FIFO or /dev/zero; the secrets directory may belong to someone else or hold
// a planted journal; two runs may race for the lock through different names of one directory; the
// disk may be full or read-only. Each case ends in a clear error that names the file (or works, for
// a read-only directory nothing needs to change in), and nothing outside the directory is touched.
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { breakStale, lockFile, withLocks } from "../src/lock.js";
import { packageRoot } from "../src/paths.js";
import { fixturesDir, privateSecrets, tempDir } from "./support.js";

const bin = join(packageRoot, "bin/f3s-gen.cjs");
const spec = join(fixturesDir, "valid/example/spec.yaml");
const isRoot = process.getuid?.() === 0;
const canUnshare = isRoot && spawnSync("unshare", ["-m", "true"]).status === 0;

/** The real command, bounded: a hang is a failure, not a stuck CI. */
function run(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, F3S_NO_CODE_CACHE: "1" } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Every file under `dir` with its bytes: what "nothing changed" is compared on. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.set(r, e.isFile() ? readFileSync(join(dir, r), "base64") : "(not a file)");
    }
  };
  walk("");
  return out;
}

function plantJournal(secrets: string, steps: unknown[], extra: (txn: string) => void = () => {}) {
  const txn = join(secrets, ".txn");
  mkdirSync(txn, { mode: 0o700 });
  extra(txn);
  writeFileSync(join(txn, "journal.json"), JSON.stringify({ format: 1, steps, index: readFileSync(join(secrets, "index.json"), "utf8") }), { mode: 0o600 });
}

const retiredCount = (secrets: string) => (JSON.parse(readFileSync(join(secrets, "index.json"), "utf8")) as { retired: unknown[] }).retired.length;

describe("the secrets journal stays inside its directory", () => {
  it.each([
    ["a `..` step", (victim: string) => [{ op: "move", from: "../victim", to: "clients/x-cert.pem" }, { op: "move", from: "clients/r0-key.pem", to: `../${victim.split("/").pop()}-key` }]],
    ["an absolute step", (victim: string) => [{ op: "move", from: victim, to: "clients/x-cert.pem" }]],
    ["a step outside the layout", () => [{ op: "move", from: "index.json", to: "elsewhere/index.json" }]],
    ["a staged name that is a path", () => [{ op: "put", staged: "../../victim", target: "ca/ca-key.pem" }]],
  ])("a planted journal with %s is refused before any step runs, naming the journal", async (_what, steps) => {
    const secrets = privateSecrets("example");
    const victim = join(dirname(secrets), "victim");
    writeFileSync(victim, "not the secrets'\n", { mode: 0o600 });
    plantJournal(secrets, steps(victim));
    const before = snapshot(secrets);
    const r = await run(["build", spec, "--secrets", secrets, "--out", join(tempDir(), "out")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(secrets, ".txn/journal.json")}:1:1: error:`);
    expect(r.stderr).toMatch(/cannot be used: .*nothing was applied from it/);
    expect(r.stderr).toContain(`remove ${join(secrets, ".txn")}`);
    expect(r.stderr).not.toMatch(/This is a bug/);
    expect(readFileSync(victim, "utf8")).toBe("not the secrets'\n");
    expect(snapshot(secrets)).toEqual(before);
  });

  it("a step through a link out of the directory is refused", async () => {
    const secrets = privateSecrets("example");
    const outside = tempDir();
    symlinkSync(outside, join(secrets, "retired"));
    plantJournal(secrets, [{ op: "move", from: "clients/r0-key.pem", to: "retired/r0/r0-key.pem" }]);
    const r = await run(["build", spec, "--secrets", secrets, "--out", join(tempDir(), "out")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/retired\/r0\/r0-key\.pem leads through a link or out of the secrets directory/);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(secrets, "clients/r0-key.pem"))).toBe(true);
  });

  it.each([
    ["not JSON", "{ damaged"],
    ["not a journal", JSON.stringify({ format: 2 })],
  ])("a damaged journal (%s) is an error naming it and what to do, not a bug", async (_what, text) => {
    const secrets = privateSecrets("example");
    mkdirSync(join(secrets, ".txn"), { mode: 0o700 });
    writeFileSync(join(secrets, ".txn/journal.json"), text, { mode: 0o600 });
    for (const args of [["build", spec, "--secrets", secrets, "--out", join(tempDir(), "out")], ["pki", "renew", spec, "r0", "--secrets", secrets]]) {
      const r = await run(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${join(secrets, ".txn/journal.json")}:1:1: error:`);
      expect(r.stderr).not.toMatch(/This is a bug/);
    }
    // pki status (read-only) says a change is pending rather than applying it
    const st = await run(["pki", "status", "--secrets", secrets]);
    expect(st.code).toBe(1);
    expect(st.stderr).toMatch(/interrupted after it was committed/);
  });

  it.skipIf(!isRoot)("in a directory owned by another user, a planted journal is not applied: the owner check comes first", async () => {
    const secrets = privateSecrets("example");
    const rootOnly = join(tempDir(), "root-only");
    writeFileSync(rootOnly, "root's\n", { mode: 0o600 });
    plantJournal(secrets, [{ op: "move", from: "clients/r0-key.pem", to: "retired/x/r0-key.pem" }]);
    const chownR = (p: string) => {
      chownSync(p, 65534, 65534);
      if (statSync(p).isDirectory()) for (const n of readdirSync(p)) chownR(join(p, n));
    };
    chownR(secrets);
    const before = snapshot(secrets);
    for (const args of [["build", spec, "--secrets", secrets, "--out", join(tempDir(), "out")], ["pki", "renew", spec, "r0", "--secrets", secrets], ["pki", "rotate-ca", spec, "--secrets", secrets], ["pki", "status", "--secrets", secrets]]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(/owned by uid 65534, not by the user running f3s-gen/);
    }
    expect(snapshot(secrets)).toEqual(before);
    expect(existsSync(join(secrets, "ca-next"))).toBe(false);
  });

  it("pki renew and rotate-ca refuse a 0644 CA key, as build does", async () => {
    const secrets = privateSecrets("example");
    chmodSync(join(secrets, "ca/ca-key.pem"), 0o644);
    for (const args of [["pki", "renew", spec, "r0", "--secrets", secrets], ["pki", "rotate-ca", spec, "--secrets", secrets], ["pki", "rotate-ca", spec, "--immediate", "--secrets", secrets]]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain("a secrets file is accessible to other users (mode 0644)");
    }
    expect(existsSync(join(secrets, "ca-next"))).toBe(false);
    expect(existsSync(join(secrets, ".txn"))).toBe(false);
  });

  it("a rotate-ca refused after staging leaves no new CA key behind", async () => {
    const secrets = privateSecrets("example");
    const caKey = readFileSync(join(secrets, "ca/ca-key.pem"));
    writeFileSync(join(secrets, "clients/r1-cert.pem"), "damaged\n", { mode: 0o600 });
    const r = await run(["pki", "rotate-ca", spec, "--immediate", "--secrets", secrets]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(secrets, "clients/r1-cert.pem")}:1:1: error: /: not a readable PEM certificate`);
    expect(existsSync(join(secrets, ".txn"))).toBe(false);
    expect(readFileSync(join(secrets, "ca/ca-key.pem"))).toEqual(caKey);
  });

  it.skipIf(!isRoot)("a directory above the secrets that another user owns is refused (they could swap the directory)", async () => {
    const base = tempDir();
    const parent = join(base, "theirs");
    mkdirSync(parent);
    const secrets = join(parent, "secrets");
    cpSync(privateSecrets("example"), secrets, { recursive: true });
    chownSync(parent, 65534, 65534);
    const r = await run(["build", spec, "--secrets", secrets, "--out", join(base, "out")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${parent}:1:1: error:`);
    expect(r.stderr).toMatch(/a directory above the secrets is owned by uid 65534/);
  });
});

describe("files the CLI opens, replaced by a FIFO or /dev/zero", () => {
  it.each([
    ["a link to /dev/zero", (f: string) => symlinkSync("/dev/zero", f), /not a regular file \(a symbolic link\)/],
    ["a FIFO", (f: string) => spawnSync("mkfifo", ["-m", "600", f]), /not a regular file \(a FIFO\)/],
  ])("pki status with a client certificate that is %s: an error naming it, at once", async (_what, make, message) => {
    const secrets = privateSecrets("example");
    const cert = join(secrets, "clients/r0-cert.pem");
    rmSync(cert);
    make(cert);
    const r = await run(["pki", "status", "--secrets", secrets], 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cert}:1:1: error:`);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/bad_alloc|This is a bug/);
  });

  it.each([
    ["a FIFO", (f: string) => spawnSync("mkfifo", ["-m", "600", f]), /a FIFO/],
    ["a link to /dev/zero", (f: string) => symlinkSync("/dev/zero", f), /a symbolic link/],
    ["a directory", (f: string) => mkdirSync(f), /a directory/],
  ])("out.lock as %s: the build stops at once, naming the lock", async (_what, make, message) => {
    const out = join(tempDir(), "out");
    make(`${out}.lock`);
    const r = await run(["build", spec, "--secrets", privateSecrets("example"), "--out", out], 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${out}.lock`);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it("a spec that is a FIFO is an error, not a hang", async () => {
    const fifo = join(tempDir(), "spec.yaml");
    spawnSync("mkfifo", [fifo]);
    const r = await run(["validate", fifo], 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/spec\.yaml:1:1: error: .*the spec is a FIFO, not a file/);
  });

  it("a junk tarball in out/: show names it, and other hosts still show", async () => {
    const out = join(tempDir(), "out");
    expect((await run(["build", spec, "--secrets", privateSecrets("example"), "--out", out, "--quiet"])).code).toBe(0);
    writeFileSync(join(out, "zz.tar.gz"), "junk", { mode: 0o600 });
    const ok = await run(["show", "r0", "--out", out]);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await run(["show", "zz", "--out", out]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${join(out, "zz.tar.gz")} is not a tarball f3s-gen wrote`);
    expect(bad.stderr).not.toMatch(/This is a bug/);
    const json = await run(["show", "zz", "--out", out, "--json"]);
    expect(JSON.parse(json.stdout).error.message).toContain("zz.tar.gz");
  });
});

describe("the lock", () => {
  it("a directory named through a link has the same lock as by its real name", () => {
    const secrets = privateSecrets("example");
    const link = join(tempDir(), "via-link");
    symlinkSync(secrets, link);
    expect(lockFile(link)).toBe(lockFile(secrets));
    expect(lockFile(join(link, "not-yet/deeper"))).toBe(lockFile(join(secrets, "not-yet/deeper")));
  });

  it("breaking a stale lock never removes the live lock that replaced it", () => {
    // A breaker that read the dead lock, then lost the race: the lock is now another run's, alive.
    const file = join(tempDir(), "secrets.lock");
    const live = `${process.pid} ${"a".repeat(32)}\n`;
    writeFileSync(file, live, { mode: 0o600 });
    breakStale(file, { pid: 999_999_999, nonce: "b".repeat(32) }, `${process.pid} ${"c".repeat(32)}\n`);
    expect(readFileSync(file, "utf8")).toBe(live);
    expect(readdirSync(dirname(file))).toEqual(["secrets.lock"]);
    // The dead lock itself is removed, and its claim with it.
    writeFileSync(file, `999999999 ${"b".repeat(32)}\n`);
    breakStale(file, { pid: 999_999_999, nonce: "b".repeat(32) }, `${process.pid} ${"c".repeat(32)}\n`);
    expect(readdirSync(dirname(file))).toEqual([]);
  });

  it("a lock that is ours but was replaced while held is not removed by us", async () => {
    const dir = join(tempDir(), "secrets");
    const other = `${process.pid} ${"d".repeat(32)}\n`;
    await withLocks([dir], async () => writeFileSync(lockFile(dir), other));
    expect(readFileSync(lockFile(dir), "utf8")).toBe(other);
  });

  it("four pki renews at once, two through a link, over a stale lock: each runs alone, none loses its change", async () => {
    const secrets = privateSecrets("example");
    const link = join(tempDir(), "link");
    symlinkSync(secrets, link);
    writeFileSync(`${secrets}.lock`, "999999999 " + "e".repeat(32) + "\n", { mode: 0o600 });
    const before = retiredCount(secrets);
    const runs = await Promise.all([secrets, link, secrets, link].map((s) => run(["pki", "renew", spec, "r0", "--secrets", s, "--quiet"], 120_000)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(retiredCount(secrets)).toBe(before + 4);
    expect(readdirSync(join(secrets, "retired")).filter((n) => n.startsWith("client-r0-"))).toHaveLength(4);
    expect(existsSync(join(secrets, ".txn"))).toBe(false);
    expect(readdirSync(dirname(secrets)).filter((n) => n.includes(".lock"))).toEqual([]);
    expect((await run(["pki", "status", "--secrets", secrets])).code).toBe(0);
  }, 240_000);
});

/** Runs `f3s-gen args` in a private mount namespace after `setup` (shell, $dir = dir), then `after`. */
function inNamespace(dir: string, setup: string, args: string[], after = "true") {
  const script = `set -e; dir=$1; shift; ${setup}; set +e; "$NODE" "$BIN" "$@"; echo "exit=$?"; ${after}`;
  const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", script, "sh", dir, ...args], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, NODE: process.execPath, BIN: bin, F3S_NO_CODE_CACHE: "1" },
  });
  return { stdout: r.stdout, stderr: r.stderr, code: Number(/exit=(\d+)/.exec(r.stdout)?.[1] ?? -1) };
}

describe.skipIf(!canUnshare)("read-only and full file systems (a private mount namespace)", () => {
  it("a read-only secrets directory: a build that changes nothing and pki status work; a change fails naming the file", () => {
    const base = tempDir();
    const ro = join(base, "ro");
    mkdirSync(ro, { mode: 0o700 });
    cpSync(privateSecrets("example"), join(ro, "secrets"), { recursive: true });
    // A first build records the cluster in index.json (a change); from then on builds change nothing.
    const first = spawnSync(process.execPath, [bin, "build", spec, "--secrets", join(ro, "secrets"), "--out", join(base, "out"), "--quiet"], { encoding: "utf8" });
    expect(first.status, first.stderr).toBe(0);
    rmSync(join(ro, "secrets/.verified"), { force: true }); // and a cache it cannot write is no error
    const mount = `mount --bind -o ro "$dir" "$dir"`;
    const built = inNamespace(ro, mount, ["build", spec, "--secrets", join(ro, "secrets"), "--out", join(base, "out"), "--quiet"]);
    expect(built.code, built.stderr).toBe(0);
    expect(existsSync(join(base, "out/r0.tar.gz"))).toBe(true);
    const status = inNamespace(ro, mount, ["pki", "status", "--secrets", join(ro, "secrets")]);
    expect(status.code, status.stderr).toBe(0);
    const renew = inNamespace(ro, mount, ["pki", "renew", spec, "r0", "--secrets", join(ro, "secrets")]);
    expect(renew.code).toBe(1);
    expect(renew.stderr).toMatch(/read-only file system: .*secrets/);
    expect(renew.stderr).not.toMatch(/This is a bug/);
  });

  it("a full disk: the message names the file, and no empty lock or staging file is left", () => {
    const base = tempDir();
    const small = join(base, "small");
    mkdirSync(small);
    const secrets = privateSecrets("example");
    // Room for the lock and part of out/: the build runs out of space while it writes a tarball.
    const part = inNamespace(small, `mount -t tmpfs -o size=48k tmpfs "$dir"`, ["build", spec, "--secrets", secrets, "--out", join(small, "out")], `ls -A "$dir"`);
    expect(part.code).toBe(1);
    expect(part.stderr).toMatch(new RegExp(`no space left on the device: ${small}/\\S+`));
    expect(part.stderr).not.toMatch(/This is a bug/);
    expect(part.stdout.replace(/exit=\d+\n/, "").trim()).toBe("");
    // Not even room for the lock: the lock's own write fails, and nothing is left.
    const full = inNamespace(small, `mount -t tmpfs -o size=16k tmpfs "$dir"; dd if=/dev/zero of="$dir/fill" bs=4k count=8 2>/dev/null || true`, ["build", spec, "--secrets", secrets, "--out", join(small, "out")], `ls -A "$dir"`);
    expect(full.code).toBe(1);
    expect(full.stderr).toMatch(/build failed: no space left on the device: .*out\.lock$/m);
    expect(full.stdout.replace(/exit=\d+\n/, "").trim()).toBe("fill");
  });
});
