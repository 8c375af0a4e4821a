// The secrets directory knows which cluster it belongs to, reports every mismatch at once with
// commands that run as written, and says when the spec's pki settings differ from the CA's.
import { describe, expect, it } from "vitest";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain, type Io } from "../src/cli.js";
import { fixturesDir, privateSecrets, tempDir } from "./support.js";

async function cli(args: string[], cwd: string) {
  let stdout = "";
  let stderr = "";
  const io: Io = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false, env: {}, cwd, now: () => new Date() };
  return { code: await runMain(args, io), stdout, stderr };
}

const example = readFileSync(join(fixturesDir, "valid/example/spec.yaml"), "utf8");
const other = readFileSync(join(fixturesDir, "valid/other/spec.yaml"), "utf8");

describe("secrets identity", () => {
  it("a spec for another cluster gets one error at index.json saying whose secrets these are, and how to start fresh", async () => {
    const dir = tempDir();
    const secrets = privateSecrets("example");
    writeFileSync(join(dir, "example.yaml"), example);
    writeFileSync(join(dir, "mine.yaml"), other);
    expect((await cli(["build", "example.yaml", "--secrets", secrets, "--out", "out"], dir)).code).toBe(0);
    expect(JSON.parse(readFileSync(join(secrets, "index.json"), "utf8")).cluster).toEqual({ domain: "lan.buetow.org", ca: "F3S Stunnel CA" });
    const r = await cli(["build", "mine.yaml", "--secrets", secrets, "--out", "out2", "--json"], dir);
    expect(r.code).toBe(1);
    const errors = JSON.parse(r.stdout).diagnostics.filter((d: { severity: string }) => d.severity === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0].file).toBe(join(secrets, "index.json"));
    expect(errors[0].message).toMatch(/belongs to the cluster lan\.buetow\.org .*not to /);
    expect(errors[0].hint).toMatch(/f3s-gen build mine\.yaml --secrets <new directory>/);
  });

  it("every mismatch at once, each with a command that runs as written, and --all offered", async () => {
    const dir = tempDir();
    const secrets = privateSecrets("example");
    writeFileSync(join(dir, "spec.yaml"), example.replace("address: 192.168.1.138", "address: 192.168.1.139"));
    rmSync(join(secrets, "clients/r1-cert.pem"));
    rmSync(join(secrets, "clients/r1-key.pem"));
    rmSync(join(secrets, "clients/r2-cert.pem"));
    rmSync(join(secrets, "clients/r2-key.pem"));
    const r = await cli(["build", "spec.yaml", "--secrets", secrets, "--json"], dir);
    expect(r.code).toBe(1);
    const errors = JSON.parse(r.stdout).diagnostics.filter((d: { severity: string }) => d.severity === "error");
    expect(errors.map((d: { hint: string }) => d.hint)).toEqual(expect.arrayContaining([
      `re-issue it for the new names: f3s-gen pki renew spec.yaml server --secrets ${secrets}`,
      `restore from your backup, or issue a new pair: f3s-gen pki renew spec.yaml r1 --secrets ${secrets}`,
      `restore from your backup, or issue a new pair: f3s-gen pki renew spec.yaml r2 --secrets ${secrets}`,
      `re-issue them all at once: f3s-gen pki renew spec.yaml --all --secrets ${secrets}`,
    ]));
    // The hint runs as written, and then the build does.
    expect((await cli(["pki", "renew", "spec.yaml", "--all", "--secrets", secrets], dir)).code).toBe(0);
    expect((await cli(["build", "spec.yaml", "--secrets", secrets], dir)).code).toBe(0);
  });

  it("changed pki settings are a warning naming pki rotate-ca, and the build goes on", async () => {
    const dir = tempDir();
    const secrets = privateSecrets("example");
    writeFileSync(join(dir, "spec.yaml"), example.replace("organization: F3S Storage", "organization: Someone Else").replace("validityDays: 3650", "validityDays: 825"));
    const r = await cli(["build", "spec.yaml", "--secrets", secrets, "--json"], dir);
    expect(r.code).toBe(0);
    const drift = JSON.parse(r.stdout).diagnostics.find((d: { code: string }) => d.code === "pki-drift");
    expect(drift.message).toMatch(/O "F3S Storage" -> "Someone Else".*validity 3650 -> 825 days/);
    expect(drift.hint).toMatch(/f3s-gen pki rotate-ca spec\.yaml/);
  });
});
