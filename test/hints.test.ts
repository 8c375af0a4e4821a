// What a user is told after a mistake (issue 22, point 7): each message names the right file and
// the fix that works, with a "did you mean" where a near miss is likely.
import { describe, expect, it } from "vitest";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT } from "../src/cli.js";
import { checkSpecText } from "../src/spec/index.js";
import { fixturesDir, privateSecrets, tempDir, runCli } from "./support.js";

const spec = join(fixturesDir, "valid/example/spec.yaml");
const example = readFileSync(spec, "utf8");

const cli = runCli;

describe("secrets problems point at the fix that works", () => {
  it("an error in a secrets file quotes no line of the spec", async () => {
    const secrets = privateSecrets("example");
    writeFileSync(join(secrets, "index.json"), "{ damaged", { mode: 0o600 });
    const r = await cli(["build", spec, "--secrets", secrets, "--out", join(tempDir(), "out")]);
    expect(r.code).toBe(EXIT.invalid);
    const block = r.stderr.slice(r.stderr.indexOf(`${join(secrets, "index.json")}:1:1: error:`));
    expect(block.split("\n")[1]).toMatch(/^ {2}hint: /);
  });

  it("a CA key that does not match its certificate: restore ca/, not pki renew (which needs that key)", async () => {
    const secrets = privateSecrets("example");
    copyFileSync(join(secrets, "server/server-key.pem"), join(secrets, "ca/ca-key.pem"));
    const r = await cli(["build", spec, "--secrets", secrets, "--out", join(tempDir(), "out")]);
    expect(r.stderr).toContain("this key does not belong to ca/ca-cert.pem");
    expect(r.stderr).toContain("restore ca/ (certificate and key together) from your backup");
    expect(r.stderr).not.toMatch(/pki renew/);
  });

  it("a lost client certificate: pki renew NAME, which then fixes it", async () => {
    const secrets = privateSecrets("example");
    rmSync(join(secrets, "clients/r0-cert.pem"));
    const out = join(tempDir(), "out");
    const r = await cli(["build", spec, "--secrets", secrets, "--out", out]);
    expect(r.stderr).toContain("the certificate of client r0 was issued but is missing");
    expect(r.stderr).toMatch(/issue a new pair: f3s-gen pki renew \S+ r0/);
    expect((await cli(["pki", "renew", spec, "r0", "--secrets", secrets])).code).toBe(EXIT.ok);
    expect((await cli(["build", spec, "--secrets", secrets, "--out", out, "--quiet"])).code).toBe(EXIT.ok);
  });

  it("pki revoke server points to pki renew server", async () => {
    const r = await cli(["pki", "revoke", spec, "server", "--secrets", privateSecrets("example")]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toContain(`the server certificate is not revoked but replaced: f3s-gen pki renew ${spec} server`);
  });
});

describe("near misses", () => {
  it("a misspelt command, a .yml for a .yaml", async () => {
    expect((await cli(["buidl", spec])).stderr).toContain('unknown command "buidl"; did you mean build?');
    const dir = tempDir();
    copyFileSync(spec, join(dir, "my-cluster.yaml"));
    expect((await cli(["validate", "my-cluster.yml"], dir)).stderr).toContain("no such file: my-cluster.yml; did you mean my-cluster.yaml?");
  });

  it("show: a retired host's decommission tarball, a unit name without systemd's escape, errors as JSON", async () => {
    const secrets = privateSecrets("example");
    const out = join(tempDir(), "out");
    expect((await cli(["build", spec, "--secrets", secrets, "--out", out, "--quiet"])).code).toBe(EXIT.ok);
    const without = join(tempDir(), "spec.yaml");
    writeFileSync(without, example.replace(/  - name: r2\n(.*\n){4}/, ""));
    expect((await cli(["build", without, "--secrets", secrets, "--out", out, "--quiet"])).code).toBe(EXIT.ok);
    const retired = await cli(["show", "r2", "--out", out]);
    expect(retired.code, retired.stderr).toBe(EXIT.ok);
    expect(retired.stderr).toContain(`r2 is retired (no longer in the spec): its decommission tarball ${join(out, "retired/r2.tar.gz")}`);
    expect(retired.stdout).toMatch(/ \/usr\/local\/sbin\/f3s-decommission$/m);
    const unit = await cli(["show", "r0", "--out", out, "--cat", "/etc/systemd/system/data-nfs-k3svolume.mount"]);
    expect(unit.stderr).toContain("r0.tar.gz has no file /etc/systemd/system/data-nfs-k3svolume.mount; did you mean /etc/systemd/system/data-nfs-k3svolumes.mount?");
    const typo = await cli(["show", "r9", "--out", out, "--json"]);
    expect(typo.code).toBe(EXIT.invalid);
    expect(JSON.parse(typo.stdout)).toMatchObject({ ok: false, error: { code: "not-found" } });
    expect(typo.stderr).toContain("did you mean r0?");
  });
});

describe("spec hints", () => {
  it("validityDays within the expiry warning is warned about", () => {
    const r = checkSpecText("spec.yaml", example.replace(/validityDays: \d+/, "validityDays: 1"));
    expect(r.diagnostics.find((d) => d.code === "short-validity")).toMatchObject({ severity: "warning", pointer: "/pki/validityDays" });
  });

  it("a misspelt replicated dataset is reported at the typo, not at nfs.dataset", () => {
    const r = checkSpecText("spec.yaml", example.replace("      - name: zdata/enc/nfsdata", "      - name: zdata/enc/nfsdta"));
    const e = r.diagnostics.find((d) => d.code === "nfs-not-replicated")!;
    expect(e.pointer).toBe("/storage/replication/datasets/0/name");
    expect(e.hint).toContain('did you mean "zdata/enc/nfsdata"?');
  });
});
