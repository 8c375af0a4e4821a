// The secrets directory: created once, reused, validated; new clients issue only their own pair;
// removed clients are retired; every problem names the file.
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync, rmSync, statSync, readdirSync, existsSync, chmodSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { checkSpecText } from "../src/spec/index.js";
import { openSecrets } from "../src/pki/secrets.js";
import { paths } from "../src/pki/store.js";
import { packageRoot } from "../src/paths.js";
import { listFiles, privateSecrets, tempDir } from "./support.js";

const spec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");
const model = (text = spec) => checkSpecText("spec.yaml", text).model!;
const now = new Date();
const snapshot = (dir: string) => new Map(listFiles(dir).map((f) => [f, readFileSync(join(dir, f))]));

/** What a build does: open (issuing in memory), then commit. */
async function openAndCommit(dir: string, m: ReturnType<typeof model>, at = now) {
  const r = await openSecrets(dir, m, { now: at });
  r.commit();
  return r;
}

describe("the secrets directory", () => {
  it("is created in one step with 0700 directories and 0600 files, then reused unchanged", async () => {
    const dir = join(tempDir(), "s");
    const small = model(spec.replace("keyBits: 4096", "keyBits: 2048"));
    const first = await openAndCommit(dir, small);
    expect(first.diagnostics).toEqual([]);
    const walk = (p: string): void => {
      const st = statSync(p);
      expect((st.mode & 0o777).toString(8), p).toBe(st.isDirectory() ? "700" : "600");
      if (st.isDirectory()) readdirSync(p).forEach((n) => walk(join(p, n)));
    };
    walk(dir);
    const before = snapshot(dir);
    const second = await openAndCommit(dir, small);
    expect(second.changes).toEqual([]);
    expect(snapshot(dir)).toEqual(before);
    expect(readdirSync(join(dir, ".."))).toEqual(["s"]);
  });

  it("issues only the new client's pair when a client is added", async () => {
    const dir = privateSecrets("example");
    const before = snapshot(dir);
    const added = spec.replace("members:", "  - name: r3\n    mounts:\n      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs/k3svolumes\n\nmembers:");
    const r = await openAndCommit(dir, model(added));
    expect(r.changes).toEqual(["issue a key and certificate for new client r3"]);
    const after = snapshot(dir);
    for (const [f, data] of before) if (f !== "index.json") expect(after.get(f)!.equals(data), f).toBe(true);
    // .verified: the cache of pairs already checked (written by this first build over these secrets).
    expect([...after.keys()].filter((f) => !before.has(f)).sort()).toEqual([".verified", "clients/r3-cert.pem", "clients/r3-key.pem"]);
  });

  it("checks a pair again when any byte of it changed, although it was verified before", async () => {
    const dir = privateSecrets("example");
    await openAndCommit(dir, model());
    expect(readFileSync(join(dir, ".verified"), "utf8").trim().split("\n")).toHaveLength(6); // CA, server, 4 clients
    copyFileSync(join(dir, paths.clientKey("r1")), join(dir, paths.clientKey("r0")));
    const r = await openSecrets(dir, model(), { now });
    expect(r.diagnostics.map((d) => d.message)).toContain(`this key does not belong to ${paths.clientCert("r0")}`);
  });

  it("writes nothing until commit: opening with a new client issues it in memory only", async () => {
    const dir = privateSecrets("example");
    const before = snapshot(dir);
    const added = spec.replace("members:", "  - name: r3\n    mounts:\n      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs/k3svolumes\n\nmembers:");
    const r = await openSecrets(dir, model(added), { now });
    expect(r.secrets!.clients.get("r3")!.certPem).toMatch(/BEGIN CERTIFICATE/);
    expect(snapshot(dir)).toEqual(before);
  });

  it("never overwrites files the index does not list: a new client's name taken, a ZFS key an older index forgot", async () => {
    const dir = privateSecrets("example");
    const before = snapshot(dir);
    writeFileSync(join(dir, paths.clientKey("r3")), "someone's key", { mode: 0o600 });
    const added = spec.replace("members:", "  - name: r3\n    mounts:\n      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs/k3svolumes\n\nmembers:");
    const r = await openSecrets(dir, model(added), { now });
    expect(r.diagnostics.map((d) => [d.location?.file, d.message])).toEqual([[join(dir, paths.clientKey("r3")), `index.json does not list client r3, but ${paths.clientKey("r3")} exist`]]);
    expect(r.diagnostics[0]!.hint).toMatch(/restore index.json from your backup/);
    rmSync(join(dir, paths.clientKey("r3")));
    // An index restored from before the key of f1's zdata was recorded.
    const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
    const key = "f1.lan.buetow.org:zdata.key";
    writeFileSync(join(dir, "index.json"), JSON.stringify({ ...index, zfsKeys: index.zfsKeys.filter((k: string) => k !== key) }), { mode: 0o600 });
    const again = await openSecrets(dir, model(), { now });
    expect(again.diagnostics.map((d) => [d.location?.file, d.message])).toEqual([[join(dir, paths.zfsKey(key)), "index.json does not list this ZFS key, but the file exists"]]);
    writeFileSync(join(dir, "index.json"), JSON.stringify(index, null, 2) + "\n", { mode: 0o600 });
    expect(snapshot(dir)).toEqual(before);
  });

  it("retires a client removed from the spec: files moved aside, never deleted", async () => {
    const dir = privateSecrets("example");
    const removed = spec.replace(/  - name: r2\n(.*\n){4}/, "");
    const r = await openAndCommit(dir, model(removed));
    expect(r.changes).toEqual(["retire client r2 (no longer in the spec): its certificate is no longer accepted"]);
    expect(existsSync(join(dir, paths.clientCert("r2")))).toBe(false);
    const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
    expect(index.retired[0]).toMatchObject({ name: "r2", reason: "removed" });
    expect(index.retired[0].kind).toBe("client");
    expect(readdirSync(join(dir, "retired"))[0]).toMatch(/^client-r2-[0-9a-f]+$/);
  });

  const broken: [string, (dir: string) => void, string, RegExp][] = [
    ["a missing CA key", (d) => rmSync(join(d, paths.caKey)), paths.caKey, /missing secrets file/],
    ["a corrupted certificate", (d) => writeFileSync(join(d, paths.serverCert), "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"), paths.serverCert, /not a readable PEM certificate/],
    ["a key that does not match its certificate", (d) => copyFileSync(join(d, paths.clientKey("r1")), join(d, paths.clientKey("r0"))), paths.clientKey("r0"), /does not belong/],
    ["an issued client whose files are gone", (d) => { rmSync(join(d, paths.clientCert("r0"))); rmSync(join(d, paths.clientKey("r0"))); }, paths.clientCert("r0"), /the certificate and key of client r0 were issued but are missing/],
    ["a ZFS key of the wrong size", (d) => writeFileSync(join(d, paths.zfsKey("f0.lan.buetow.org:zdata.key")), "short"), paths.zfsKey("f0.lan.buetow.org:zdata.key"), /32 bytes/],
    ["a key pair from another CA", (d) => {
      const foreign = privateSecrets("other");
      copyFileSync(join(foreign, paths.clientCert("k8s-a")), join(d, paths.clientCert("r0")));
      copyFileSync(join(foreign, paths.clientKey("k8s-a")), join(d, paths.clientKey("r0")));
    }, paths.clientCert("r0"), /not issued by the CA/],
  ];

  it.each(broken)("rejects %s, naming the file, and changes nothing", async (_name, breakIt, file, message) => {
    const dir = privateSecrets("example");
    breakIt(dir);
    const before = snapshot(dir);
    const r = await openAndCommit(dir, model());
    expect(r.secrets).toBeUndefined();
    expect(r.diagnostics[0]!.location!.file).toBe(join(dir, file));
    expect(r.diagnostics[0]!.message).toMatch(message);
    expect(snapshot(dir)).toEqual(before);
  });

  it("rejects a secrets directory that other users can read", async () => {
    const dir = privateSecrets("example");
    chmodSync(dir, 0o755);
    const r = await openAndCommit(dir, model());
    expect(r.diagnostics.map((d) => d.code)).toContain("secrets.permissions");
  });

  it("refuses a server certificate for other names than the spec's VIP", async () => {
    const dir = privateSecrets("example");
    const r = await openAndCommit(dir, model(spec.replace("hostname: f3s-storage-ha ", "hostname: other-vip ")));
    expect(r.diagnostics[0]!.message).toMatch(/server certificate names/);
    expect(r.diagnostics[0]!.hint).toMatch(/pki renew \S+ server --secrets /);
  });

  it("warns when a certificate expires within 30 days", async () => {
    const dir = privateSecrets("example");
    const later = new Date(Date.now() + 3640 * 86400_000);
    const r = await openSecrets(dir, model(), { now: later });
    expect(r.diagnostics.some((d) => d.code === "cert-expiring")).toBe(true);
  });
});
