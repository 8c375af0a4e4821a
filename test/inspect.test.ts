// f3s-gen diff and f3s-gen show.
import { describe, expect, it, beforeAll } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain, EXIT, type Io } from "../src/cli.js";
import { packageRoot } from "../src/paths.js";
import { buildCase, listFiles, tempDir, type Built } from "./support.js";

const exampleSpec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");
let built: Built;
beforeAll(async () => {
  built = await buildCase("example");
});

async function cli(args: string[]) {
  let stdout = "";
  let stderr = "";
  const io: Io = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false, env: {}, cwd: tempDir(), now: () => new Date() };
  return { code: await runMain(args, io), stdout, stderr };
}

function specWith(edit: (text: string) => string): string {
  const file = join(tempDir(), "spec.yaml");
  writeFileSync(file, edit(exampleSpec));
  return file;
}

const snapshot = (dir: string) => new Map(listFiles(dir).map((f) => [f, readFileSync(join(dir, f)).toString("base64")]));
const diff = (spec: string, ...extra: string[]) => cli(["diff", spec, "--out", built.outDir, "--secrets", built.secretsDir, ...extra]);

describe("f3s-gen diff", () => {
  it("exits 0 and says so when nothing would change", async () => {
    const r = await diff(join(packageRoot, "fixtures/valid/example/spec.yaml"));
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/^no changes against /);
    const json = JSON.parse((await diff(join(packageRoot, "fixtures/valid/example/spec.yaml"), "--json")).stdout);
    expect(json).toMatchObject({ changed: false, hosts: [] });
  });

  it("shows a changed value as a unified diff in every file it reaches, and exits 3", async () => {
    const r = await diff(specWith((t) => t.replace("tlsPort: 2323", "tlsPort: 2424")), "--json");
    expect(r.code).toBe(EXIT.changes);
    const { hosts } = JSON.parse(r.stdout);
    expect(hosts.map((h: { host: string }) => h.host)).toEqual(["earth", "f0", "f1", "r0", "r1", "r2"]);
    const f0 = hosts.find((h: { host: string }) => h.host === "f0");
    const conf = f0.files.find((f: { path: string }) => f.path === "usr/local/etc/stunnel/stunnel.conf");
    expect(conf.kind).toBe("changed");
    // r0 (slot 1) listens on tlsPort + 1.
    expect(conf.patch).toContain("-accept = 192.168.1.138:2324");
    expect(conf.patch).toContain("+accept = 192.168.1.138:2425");
    const r0 = hosts.find((h: { host: string }) => h.host === "r0");
    expect(r0.files.map((f: { path: string }) => f.path)).toContain("etc/systemd/system/data-nfs-k3svolumes.mount");
  });

  it("shows an added client as a new host and as a new allow-list on the storage nodes", async () => {
    const spec = specWith((t) => t.replace("members:", "  - name: r3\n    mounts:\n      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs/k3svolumes\n\nmembers:"));
    const before = snapshot(built.secretsDir);
    const r = await diff(spec, "--json");
    expect(r.code).toBe(EXIT.changes);
    const json = JSON.parse(r.stdout);
    const r3 = json.hosts.find((h: { host: string }) => h.host === "r3");
    expect(r3.status).toBe("added");
    const allow = json.hosts.find((h: { host: string }) => h.host === "f1").files.find((f: { path: string }) => f.path === "usr/local/etc/stunnel/ca/clients/r3.pem");
    expect(allow).toMatchObject({ kind: "added", note: "certificates" });
    // The build would make its own serial and fingerprint: none is shown that it would not keep.
    expect(allow.patch).toMatch(/\n\+CN=r3\.lan\.buetow\.org \(new: serial and fingerprint are made by the build\)/);
    expect(json.secretChanges).toEqual(["issue a key and certificate for new client r3"]);
    // diff writes nothing: the key it made for r3 existed only in memory.
    expect(snapshot(built.secretsDir)).toEqual(before);
    const pem = r3.files.find((f: { path: string }) => f.path === "etc/stunnel/r3-stunnel.pem");
    expect(pem).toMatchObject({ patch: null, note: "private key material (not shown)" });
  });

  it("shows a removed client as a removed host and as a removed allow-list entry", async () => {
    const r = await diff(specWith((t) => t.replace(/  - name: r2\n(.*\n){4}/, "")));
    expect(r.code).toBe(EXIT.changes);
    expect(r.stdout).toMatch(/^host r2: removed \(18 files\); the build writes its decommission tarball \S+\/retired\/r2\.tar\.gz \(f3s-decommission undoes what f3s-gen installed\)$/m);
    expect(r.stdout).toMatch(/^\s+-CN=r2\.lan\.buetow\.org serial/m);
    expect(r.stdout).toMatch(/secrets: would retire client r2/);
  });

  it("--json lists the hosts whose decommission tarball the build writes", async () => {
    const r = await diff(specWith((t) => t.replace(/  - name: r2\n(.*\n){4}/, "")), "--json");
    expect(JSON.parse(r.stdout).retired).toEqual([{ name: "r2", tarball: join(built.outDir, "retired/r2.tar.gz"), new: true }]);
  });

  it("never shows the CARP password, old or new", async () => {
    const r = await diff(specWith((t) => t.replace("password: testpass", "password: N3wSecretPass")));
    expect(r.code).toBe(EXIT.changes);
    expect(r.stdout).toContain("pass ********");
    expect(r.stdout).not.toContain("testpass");
    expect(r.stdout).not.toContain("N3wSecretPass");
  });

  it("exits 1 on an invalid spec and treats a missing out/ as all hosts added", async () => {
    expect((await diff(specWith((t) => t.replace("vhid: 1", "vhid: 0")))).code).toBe(EXIT.invalid);
    const r = await cli(["diff", join(packageRoot, "fixtures/valid/example/spec.yaml"), "--out", join(tempDir(), "none"), "--secrets", built.secretsDir, "--json"]);
    expect(r.code).toBe(EXIT.changes);
    expect(JSON.parse(r.stdout).hosts.every((h: { status: string }) => h.status === "added")).toBe(true);
  });
});

describe("f3s-gen show", () => {
  it("lists a host's files with mode, size and sha256 (--json)", async () => {
    const r = await cli(["show", "f0", "--out", built.outDir, "--json"]);
    expect(r.code).toBe(EXIT.ok);
    const { files } = JSON.parse(r.stdout);
    const key = files.find((f: { path: string }) => f.path === "/usr/local/etc/stunnel/server-key.pem");
    expect(key).toMatchObject({ mode: "0600", private: true });
    expect(files.find((f: { path: string }) => f.path === "/etc/exports").sha256).toMatch(/^[0-9a-f]{64}$/);
    const text = await cli(["show", "f0", "--out", built.outDir]);
    expect(text.stdout).toMatch(/^0755 +\d+ [0-9a-f]{64} \/usr\/local\/bin\/carp$/m);
  });

  it("--cat prints one file, masks the CARP password, and never prints private keys", async () => {
    const exports = await cli(["show", "f0", "--out", built.outDir, "--cat", "/etc/exports"]);
    expect(exports.stdout).toContain("V4: /data/nfs -sec=sys");
    const netif = await cli(["show", "f0", "--out", built.outDir, "--cat", "etc/rc.conf.d/netif"]);
    expect(netif.stdout).toContain("pass ********");
    expect(netif.stdout).not.toContain("testpass");
    const key = await cli(["show", "f0", "--out", built.outDir, "--cat", "usr/local/etc/stunnel/server-key.pem"]);
    expect(key.code).toBe(EXIT.invalid);
    expect(key.stdout).toBe("");
    expect((await cli(["show", "keys", "--out", built.outDir, "--cat", "f0.lan.buetow.org:zdata.key"])).code).toBe(EXIT.invalid);
  });

  it("explains an unknown host or file", async () => {
    expect((await cli(["show", "nosuch", "--out", built.outDir])).stderr).toMatch(/no nosuch\.tar\.gz/);
    expect((await cli(["show", "f0", "--out", built.outDir, "--cat", "/etc/nothing"])).code).toBe(EXIT.invalid);
  });
});
