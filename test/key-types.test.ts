// pki.keyType: RSA and ECDSA certificates assembled from forge's ASN.1 and signed by Node, checked by
// the program that will read them (openssl: chain, key usage, signature algorithm, key identifiers),
// a key-type change said as drift and applied by rotate-ca, and a tunnel through the real stunnel4.
import { describe, expect, it, afterEach } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkSpecFile, checkSpecText } from "../src/spec/index.js";
import { openSecrets } from "../src/pki/secrets.js";
import { rotateCa } from "../src/pki/manage.js";
import { packageRoot } from "../src/paths.js";
import { initialSpec } from "../src/init.js";
import { buildCase, extract, hasTool, tempDir } from "./support.js";
import { clientConf, freePort, roundTrip, serverConf, startEcho, startStunnel, stunnelBinary } from "./stunnel-harness.js";

const spec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");
const withKeyType = (keyType: string) => spec.replace(/^( +)keyBits: .*$/m, `$1keyType: ${keyType}`);
const model = (text: string) => {
  const r = checkSpecText("spec.yaml", text);
  if (!r.model) throw new Error(JSON.stringify(r.diagnostics));
  return r.model;
};
const hasOpenssl = hasTool("openssl", ["version"]);
const openssl = (args: string[], input?: string) => spawnSync("openssl", args, { input, encoding: "utf8" });
const text = (pem: string) => openssl(["x509", "-noout", "-text"], pem).stdout;

async function freshSecrets(keyType: string) {
  const dir = join(tempDir(), "secrets");
  const r = await openSecrets(dir, model(withKeyType(keyType)), { now: new Date() });
  expect(r.diagnostics).toEqual([]);
  r.commit();
  return { dir, secrets: r.secrets! };
}

const cases = [
  { keyType: "ecdsa-p256", key: /id-ecPublicKey[\s\S]*NIST CURVE: P-256/, sig: "ecdsa-with-SHA256" },
  { keyType: "ecdsa-p384", key: /id-ecPublicKey[\s\S]*NIST CURVE: P-384/, sig: "ecdsa-with-SHA384" },
  { keyType: "rsa", key: /rsaEncryption[\s\S]*Public-Key: \(4096 bit\)/, sig: "sha256WithRSAEncryption" },
];

describe.skipIf(!hasOpenssl)("pki.keyType, checked by openssl", () => {
  it.each(cases)("$keyType: every certificate verifies against the CA, with the right algorithms and extensions", async ({ keyType, key, sig }) => {
    const { dir, secrets } = await freshSecrets(keyType);
    const leaves = [join(dir, "server/server-cert.pem"), ...[...secrets.clients.keys()].map((n) => join(dir, `clients/${n}-cert.pem`))];
    const v = openssl(["verify", "-x509_strict", "-CAfile", join(dir, "ca/ca-cert.pem"), ...leaves]);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    const ca = text(secrets.ca.certPem);
    const server = text(secrets.server.certPem);
    for (const t of [ca, server]) {
      expect(t).toMatch(key);
      expect(t.match(new RegExp(`Signature Algorithm: ${sig}`, "g"))?.length).toBe(2);
    }
    // Key identifiers chain: the leaf's authority key id is the CA's subject key id.
    const ski = /Subject Key Identifier: *\n\s+(\S+)/.exec(ca)![1];
    expect(server).toMatch(new RegExp(`Authority Key Identifier: *\\n\\s+(keyid:)?${ski}`));
    // keyEncipherment is RSA key transport: only RSA leaves carry it.
    expect(/Key Usage: critical\n\s+Digital Signature, Key Encipherment/.test(server)).toBe(keyType === "rsa");
    expect(server).toMatch(/TLS Web Server Authentication/);
    // Each key belongs to its certificate (what stunnel checks at start).
    const pub = (pem: string, kind: "x509" | "pkey") => openssl(kind === "x509" ? ["x509", "-noout", "-pubkey"] : ["pkey", "-pubout"], pem).stdout;
    expect(pub(secrets.server.keyPem, "pkey")).toBe(pub(secrets.server.certPem, "x509"));
  });

  it("a CA valid past 2049 encodes its end as GeneralizedTime, which openssl reads", async () => {
    const r = await openSecrets(join(tempDir(), "secrets"), model(withKeyType("ecdsa-p256").replace(/validityDays: \d+/, "validityDays: 36500")), { now: new Date() });
    const secrets = r.secrets!;
    const end = openssl(["x509", "-noout", "-enddate"], secrets.ca.certPem).stdout;
    expect(Number(/ (\d{4}) GMT/.exec(end)![1])).toBeGreaterThan(2049);
    expect(openssl(["asn1parse"], secrets.ca.certPem).stdout).toMatch(/GENERALIZEDTIME/);
  });

  it("keyBits with an ECDSA key type is an error at keyBits", () => {
    const r = checkSpecText("spec.yaml", spec.replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256\n$1keyBits: 4096"));
    expect(r.diagnostics.filter((d) => d.severity === "error").map((d) => [d.code, d.pointer])).toEqual([["key-bits-not-rsa", "/pki/keyBits"]]);
  });

  it("init proposes ECDSA P-256, and the spec it writes is valid", () => {
    const written = initialSpec(spec, "schema.json", "spec.carp-password");
    expect(written).toMatch(/^ +keyType: ecdsa-p256/m);
    expect(written).not.toMatch(/^ +keyBits:/m);
    // A new cluster's exports start as datasets of their own (nothing to migrate).
    expect(written).toMatch(/^ +exportDatasets: true /m);
    // The password is in the file the spec names, beside it.
    const dir = mkdtempSync(join(tmpdir(), "f3s-init-"));
    writeFileSync(join(dir, "spec.yaml"), written);
    writeFileSync(join(dir, "spec.carp-password"), "Abcdefgh23456789\n", { mode: 0o600 });
    expect(checkSpecFile(join(dir, "spec.yaml"), "spec.yaml", {}).diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });

  it("changing the key type of an existing CA is drift (a warning naming rotate-ca); rotate-ca applies it to every certificate", async () => {
    const { dir } = await freshSecrets("ecdsa-p384");
    const p256 = model(withKeyType("ecdsa-p256"));
    const r = await openSecrets(dir, p256, { now: new Date() });
    const drift = r.diagnostics.find((d) => d.code === "pki-drift");
    expect(drift?.message).toContain("key ECDSA P-384 -> ECDSA P-256");
    expect(drift?.hint).toContain("pki rotate-ca");
    const rotated = await rotateCa(dir, p256, new Date()); // --immediate
    expect(rotated.diagnostics).toEqual([]);
    const after = await openSecrets(dir, p256, { now: new Date() });
    expect(after.diagnostics).toEqual([]);
    for (const pem of [after.secrets!.ca.certPem, after.secrets!.server.certPem, ...[...after.secrets!.clients.values()].map((p) => p.certPem)]) {
      expect(text(pem)).toMatch(/NIST CURVE: P-256/);
    }
  });
});

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

describe.skipIf(!hasOpenssl || stunnelBinary === undefined)("ECDSA tunnels through the real stunnel4", () => {
  it.each(["ecdsa-p256", "ecdsa-p384"])("%s: the generated server and client tunnels carry data; a foreign ECDSA client is refused", async (keyType) => {
    const specPath = join(tempDir(), "spec.yaml");
    writeFileSync(specPath, withKeyType(keyType));
    const built = await buildCase("example", { spec: specPath, secretsDir: join(tempDir(), "secrets") });
    const foreign = await buildCase("example", { spec: specPath, secretsDir: join(tempDir(), "secrets") });
    const echo = await startEcho();
    running.push({ stop: () => echo.close() });
    const serverRoot = extract(join(built.outDir, "f0.tar.gz"));
    const serverPort = await freePort();
    const server = await startStunnel(serverConf(readFileSync(join(serverRoot, "usr/local/etc/stunnel/stunnel.conf"), "utf8"), serverRoot, { accept: { "nfs-r0": serverPort }, connect: echo.port }, join(serverRoot, "stunnel.pid")), serverRoot, "server");
    running.push(server);
    const tunnel = async (outDir: string) => {
      const root = extract(join(outDir, "r0.tar.gz"));
      const port = await freePort();
      const s = await startStunnel(clientConf(readFileSync(join(root, "etc/stunnel/stunnel.conf"), "utf8"), root, { accept: port, connect: serverPort }, join(root, "stunnel.pid")), root, "client");
      running.push(s);
      return port;
    };
    const data = Buffer.from(`NFS over ${keyType} ${"x".repeat(4096)}`);
    const ok = await roundTrip(await tunnel(built.outDir), data);
    expect(ok?.equals(data), server.log()).toBe(true);
    expect(await roundTrip(await tunnel(foreign.outDir), data, 3000)).toBeNull();
    expect(echo.connections).toBe(1);
  });
});
