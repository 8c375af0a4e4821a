// f3s-gen pki status | renew | revoke | rotate-ca.
import { describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { runMain, type Io } from "../src/cli.js";
import { packageRoot } from "../src/paths.js";
import { listFiles, privateSecrets, tempDir } from "./support.js";

const spec = join(packageRoot, "fixtures/valid/example/spec.yaml");

async function pki(args: string[], now = new Date()) {
  let stdout = "";
  let stderr = "";
  const io: Io = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false, env: {}, cwd: tempDir(), now: () => now };
  const code = await runMain(["pki", ...args], io);
  return { code, stdout, stderr };
}

const cert = (dir: string, rel: string) => new X509Certificate(readFileSync(join(dir, rel)));
const files = (dir: string) => new Map(listFiles(dir).map((f) => [f, readFileSync(join(dir, f)).toString("base64")]));

describe("f3s-gen pki", () => {
  it("status lists every certificate with CN, expiry, days left and SHA-256 (--json)", async () => {
    const dir = privateSecrets("example");
    const r = await pki(["status", "--secrets", dir, "--json"]);
    expect(r.code).toBe(0);
    const { certs } = JSON.parse(r.stdout);
    expect(certs.map((c: { host: string }) => c.host)).toEqual(["CA", "server", "earth", "r0", "r1", "r2"]);
    expect(Object.keys(certs[0])).toEqual(["host", "kind", "commonName", "notAfter", "daysLeft", "sha256", "serial", "expiring"]);
    expect(certs[1]).toMatchObject({ kind: "server", commonName: "f3s-storage-ha.lan.buetow.org", expiring: false });
    expect(certs[1].sha256).toBe(cert(dir, "server/server-cert.pem").fingerprint256);
    const text = await pki(["status", "--secrets", dir]);
    expect(text.stdout.split("\n")[0]).toMatch(/^HOST\s+CN\s+NOT AFTER\s+DAYS LEFT\s+SHA-256$/);
  });

  it("status marks certificates that expire within 30 days", async () => {
    const dir = privateSecrets("example");
    const later = new Date(new Date(cert(dir, "ca/ca-cert.pem").validTo).getTime() - 10 * 86400_000);
    const { certs } = JSON.parse((await pki(["status", "--secrets", dir, "--json"], later)).stdout);
    expect(certs.every((c: { expiring: boolean }) => c.expiring)).toBe(true);
  });

  it("renew re-issues only the named leaf, under the same CA", async () => {
    const dir = privateSecrets("example");
    const before = files(dir);
    expect((await pki(["renew", spec, "r0", "--secrets", dir])).code).toBe(0);
    const after = files(dir);
    const changed = [...after.keys()].filter((f) => before.get(f) !== after.get(f) && !f.startsWith("retired/"));
    expect(changed.sort()).toEqual(["clients/r0-cert.pem", "clients/r0-key.pem", "index.json"]);
    expect(cert(dir, "clients/r0-cert.pem").checkIssued(cert(dir, "ca/ca-cert.pem"))).toBe(true);
  });

  it("renew --all re-issues the server and every client, keeps the CA and the ZFS keys", async () => {
    const dir = privateSecrets("example");
    const before = files(dir);
    expect((await pki(["renew", spec, "--all", "--secrets", dir])).code).toBe(0);
    const after = files(dir);
    for (const f of ["ca/ca-cert.pem", "ca/ca-key.pem", ...[...before.keys()].filter((f) => f.startsWith("zfs/"))]) expect(after.get(f), f).toBe(before.get(f));
    for (const f of ["server/server-cert.pem", "clients/r0-cert.pem", "clients/earth-cert.pem"]) expect(after.get(f), f).not.toBe(before.get(f));
  });

  it("revoke refuses names that are not clients", async () => {
    const dir = privateSecrets("example");
    const r = await pki(["revoke", spec, "f0", "--secrets", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("f0 is not a client in the spec");
  });

  it("rotate-ca --immediate issues a new CA and every leaf under it at once, keeping the ZFS keys", async () => {
    const dir = privateSecrets("example");
    const before = files(dir);
    const oldCa = cert(dir, "ca/ca-cert.pem");
    expect((await pki(["rotate-ca", spec, "--immediate", "--secrets", dir])).code).toBe(0);
    const newCa = cert(dir, "ca/ca-cert.pem");
    expect(newCa.fingerprint256).not.toBe(oldCa.fingerprint256);
    for (const f of ["server/server-cert.pem", "clients/r0-cert.pem", "clients/r1-cert.pem", "clients/r2-cert.pem", "clients/earth-cert.pem"]) {
      expect(cert(dir, f).verify(newCa.publicKey), f).toBe(true);
      expect(cert(dir, f).verify(oldCa.publicKey), f).toBe(false);
    }
    for (const f of [...before.keys()].filter((f) => f.startsWith("zfs/"))) expect(files(dir).get(f)).toBe(before.get(f));
  });

  it("rotate-ca goes in three stages: trust the next CA, re-issue from it, drop the old one", async () => {
    const dir = privateSecrets("example");
    const before = files(dir);
    const leaves = ["server/server-cert.pem", "clients/r0-cert.pem", "clients/r1-cert.pem", "clients/r2-cert.pem", "clients/earth-cert.pem"];
    const oldCa = cert(dir, "ca/ca-cert.pem");

    const one = await pki(["rotate-ca", spec, "--secrets", dir]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^stage 1 of 3: a new CA/m);
    expect(one.stdout).toContain(`then run f3s-gen pki rotate-ca ${spec} again`);
    const nextCa = cert(dir, "ca-next/ca-cert.pem");
    expect(cert(dir, "ca/ca-cert.pem").fingerprint256).toBe(oldCa.fingerprint256);
    for (const f of leaves) expect(files(dir).get(f), `${f} unchanged in stage 1`).toBe(before.get(f));

    const two = await pki(["rotate-ca", spec, "--secrets", dir]);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stdout).toMatch(/^stage 2 of 3/m);
    expect(cert(dir, "ca/ca-cert.pem").fingerprint256).toBe(nextCa.fingerprint256);
    expect(cert(dir, "ca-prev/ca-cert.pem").fingerprint256).toBe(oldCa.fingerprint256);
    for (const f of leaves) expect(cert(dir, f).verify(nextCa.publicKey), f).toBe(true);
    const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
    expect(index.rotation.stage).toBe("reissue");
    expect(index.rotation.previousClients.map((c: { name: string }) => c.name).sort()).toEqual(["earth", "r0", "r1", "r2"]);
    // --immediate is refused halfway through a staged rotation.
    const refused = await pki(["rotate-ca", spec, "--immediate", "--secrets", dir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("a staged CA rotation is in progress (stage 2 of 3)");

    const three = await pki(["rotate-ca", spec, "--secrets", dir, "--json"]);
    expect(three.code, three.stderr).toBe(0);
    expect(JSON.parse(three.stdout)).toMatchObject({ ok: true, stage: "finish" });
    expect(existsSync(join(dir, "ca-prev"))).toBe(false);
    expect(existsSync(join(dir, "ca-next"))).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, "index.json"), "utf8")).rotation).toBeUndefined();
    for (const f of [...before.keys()].filter((f) => f.startsWith("zfs/"))) expect(files(dir).get(f)).toBe(before.get(f));
  });

  it("exits 2 on pki usage errors", async () => {
    for (const args of [["frob"], ["renew"], ["renew", spec], ["revoke", spec], ["revoke", spec, "a", "b"], ["status", spec, "extra"]]) {
      expect((await pki(args)).code, args.join(" ")).toBe(2);
    }
  });
});

describe("pki --dry-run: what a writing command would do, with nothing written", () => {
  it.each([
    [["renew", spec, "r0"], /renewed r0: old certificate [0-9a-f]+ moved to retired\//],
    [["renew", spec, "--all"], /renewed server: .*\n(.*\n)*.*renewed r2:/],
    [["revoke", spec, "r1"], /revoked r1: old certificate/],
    [["rotate-ca", spec], /stage 1 of 3: a new CA/],
    [["rotate-ca", spec, "--immediate"], /new CA; the old one \([0-9a-f]+\) moved to retired\//],
  ])("pki %j --dry-run", async (args, says) => {
    const dir = privateSecrets("example");
    const before = files(dir);
    const r = await pki([...args, "--secrets", dir, "--dry-run"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^dry run: nothing was written; this would:\n/);
    expect(r.stdout).toMatch(says);
    expect(files(dir)).toEqual(before);
    expect(existsSync(`${dir}.lock`)).toBe(false);
    const json = JSON.parse((await pki([...args, "--secrets", dir, "--dry-run", "--json"])).stdout);
    expect(json).toMatchObject({ ok: true, dryRun: true });
    expect(files(dir)).toEqual(before);
    // And the real run does what the dry run said.
    const real = await pki([...args, "--secrets", dir]);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toMatch(says);
  });

  it("a dry run is refused for the same reasons as the real run (a 0644 CA key)", async () => {
    const dir = privateSecrets("example");
    const { chmodSync } = await import("node:fs");
    chmodSync(join(dir, "ca/ca-key.pem"), 0o644);
    const r = await pki(["renew", spec, "r0", "--secrets", dir, "--dry-run"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("accessible to other users (mode 0644)");
  });
});
