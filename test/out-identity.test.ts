// out/ knows its cluster, and the defaults follow the spec, not the working directory: the ways a
// build used to make a new CA and new ZFS keys silently, or mark every real host retired.
import { describe, expect, it } from "vitest";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { runMain, EXIT, type Io } from "../src/cli.js";
import { packageRoot } from "../src/paths.js";
import { listFiles, tempDir } from "./support.js";

const exampleSpec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");

async function run(args: string[], cwd: string) {
  let stdout = "";
  let stderr = "";
  const io: Io = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false, env: {}, cwd, now: () => new Date() };
  const code = await runMain(args, io);
  return { code, stdout, stderr };
}

/** Every file of a directory with its hash: "unchanged" means byte for byte. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(listFiles(dir).map((f) => [f, createHash("sha256").update(readFileSync(join(dir, f))).digest("hex")]));
}

/** A cluster directory with the example spec in it, built once (ECDSA keys: fast). */
async function cluster(spec = exampleSpec) {
  const dir = tempDir();
  writeFileSync(join(dir, "cluster.yaml"), spec.replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256"));
  const r = await run(["build", "cluster.yaml", "--quiet"], dir);
  expect(r.code, r.stderr).toBe(EXIT.ok);
  return dir;
}

describe("defaults beside the spec", () => {
  it("a build from another directory finds the cluster's secrets and out/ beside the spec and changes nothing", async () => {
    const dir = await cluster();
    const before = snapshot(dir);
    const elsewhere = tempDir();
    const r = await run(["build", join(dir, "cluster.yaml")], elsewhere);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain(`secrets: ${join(dir, "secrets")} (reused, unchanged)`);
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(snapshot(dir), "same secrets, byte-identical tarballs").toEqual(before);
  });

  it("secrets left in the working directory by an earlier version are named, not replaced by new ones", async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, "secrets"));
    mkdirSync(join(cwd, "clusters"));
    writeFileSync(join(cwd, "clusters/a.yaml"), exampleSpec);
    const r = await run(["build", "clusters/a.yaml"], cwd);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toContain(`${join(cwd, "clusters/secrets")} does not exist, but ./secrets does`);
    expect(r.stderr).toContain("f3s-gen build clusters/a.yaml --secrets secrets");
    expect(listFiles(cwd)).toEqual(["clusters/a.yaml"]);
  });
});

describe("out/ knows its cluster", () => {
  it("records the domain and the CA's fingerprint", async () => {
    const dir = await cluster();
    const recorded = JSON.parse(readFileSync(join(dir, "out/cluster.json"), "utf8"));
    expect(recorded.domain).toBe("lan.buetow.org");
    expect(recorded.ca).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it("another cluster's spec built into it is an error naming both, and out/ is left as it was", async () => {
    const dir = await cluster();
    const before = snapshot(join(dir, "out"));
    const other = tempDir();
    writeFileSync(join(other, "other.yaml"), readFileSync(join(packageRoot, "fixtures/valid/other/spec.yaml"), "utf8"));
    const r = await run(["build", "other.yaml", "--out", join(dir, "out")], other);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toMatch(/holds the build of another cluster: lan\.buetow\.org \(CA [0-9A-F:]+\.\.\.\), not [a-z.]+ \(CA [0-9A-F:]+\.\.\.\)/);
    expect(r.stderr).not.toMatch(/retired\//);
    expect(snapshot(join(dir, "out"))).toEqual(before);
    // With --json the failure is JSON too.
    const json = await run(["build", "other.yaml", "--out", join(dir, "out"), "--json"], other);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, error: { code: "output" } });
  });

  it("the same cluster after pki rotate-ca builds into it (the old CA is in the secrets' record)", async () => {
    const dir = await cluster();
    expect((await run(["pki", "rotate-ca", "cluster.yaml"], dir)).code).toBe(EXIT.ok);
    const r = await run(["build", "cluster.yaml"], dir);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(existsSync(join(dir, "out/retired"))).toBe(false);
  });

  it("a ZFS key that differs from the one in out/keys.tar.gz is refused unless --replace-zfs-keys", async () => {
    const dir = await cluster();
    // A secrets directory that lost a key and its record (an older backup restored, say): the next
    // build would make a new key under the same file name.
    const index = JSON.parse(readFileSync(join(dir, "secrets/index.json"), "utf8"));
    const lost = "f0.lan.buetow.org:zdata.key";
    index.zfsKeys = index.zfsKeys.filter((k: string) => k !== lost);
    writeFileSync(join(dir, "secrets/index.json"), JSON.stringify(index, null, 2) + "\n");
    cpSync(join(dir, "secrets/zfs", lost), join(tempDir(), "kept"));
    const { rmSync } = await import("node:fs");
    rmSync(join(dir, "secrets/zfs", lost));
    const before = snapshot(dir);
    const r = await run(["build", "cluster.yaml"], dir);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toContain(`keys.tar.gz in ${join(dir, "out")} holds another key for ${lost} than this build would write`);
    expect(r.stderr).toContain("--replace-zfs-keys");
    expect(snapshot(dir), "nothing written: not out/, not the secrets").toEqual(before);
    const forced = await run(["build", "cluster.yaml", "--replace-zfs-keys"], dir);
    expect(forced.code, forced.stderr).toBe(EXIT.ok);
    expect(forced.stdout).toContain(`generate ZFS key ${lost}`);
  });
});
