// The client side on a booted Linux: a Debian 12 guest (built from Debian's packages by
// test/vm/build-image.sh, cached) boots under QEMU's emulation with a job disk holding the
// generated client tarballs of three releases and the storage node's generated stunnel
// configuration; test/vm/guest/driver runs the scenario inside (activation twice, the mounts
// through both tunnels, the guard against local users with the kernel's NFS client, a tunnel
// restart under a busy mount, a failover repaired by the monitor alone, a reboot, a mount removed
// from the spec, revocation) and this file reads its verdicts back. What it proves and what it
// cannot (Rocky/Fedora, FreeBSD) is in the README, "What is proven where".
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { build } from "../src/pipeline.js";
import { runMain } from "../src/cli.js";
import { checkSpecText } from "../src/spec/index.js";
import { extract, hasTool, tempDir } from "./support.js";

const isRoot = process.getuid?.() === 0;
const wanted = Boolean(process.env.CI) || process.env.F3S_VM === "1";
const available = isRoot && wanted && hasTool("qemu-system-x86_64", ["--version"]) && hasTool("mmdebstrap", ["--version"]) && hasTool("debugfs", ["-V"]);
if (process.env.CI && !isRoot) throw new Error("the VM test runs as root in CI (mmdebstrap and mkfs.ext4 -d keep ownership)");

const vmDir = join(packageRoot, "test/vm");
const specV1 = readFileSync(join(vmDir, "spec.yaml"), "utf8");
const model = checkSpecText("spec.yaml", specV1).model!;
const client = model.clients[0]!;
const [kept, removed] = client.mounts as [(typeof client.mounts)[0], (typeof client.mounts)[0]];
// v2 drops the second mount.
const specV2 = specV1.replace(/\n      - export: \/srv\/f3s\n        mountpoint: \/mnt\/all\n/, "\n");

async function release(spec: string, outDir: string, secretsDir: string) {
  const specPath = join(tempDir(), "spec.yaml");
  writeFileSync(specPath, spec);
  const r = await build({ specPath, outDir, secretsDir, now: new Date() });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((d) => d.message).join("\n"));
  return specPath;
}

/** The storage node's generated stunnel files, rewritten to run in the guest: paths, Debian's user, foreground. */
function serverFiles(outDir: string, jobDir: string, name: string) {
  const root = extract(join(outDir, `${model.primary.name}.tar.gz`));
  const dir = join(jobDir, name);
  cpSync(join(root, "usr/local/etc/stunnel"), dir, { recursive: true });
  const conf = readFileSync(join(dir, "stunnel.conf"), "utf8")
    .replaceAll("/usr/local/etc/stunnel/", `/f3s-job/${name}/`)
    .replace(/^setuid = .*$/m, "setuid = stunnel4")
    .replace(/^setgid = .*$/m, "setgid = stunnel4")
    .replace(/^pid = .*$/m, "foreground = yes");
  writeFileSync(join(dir, "stunnel.conf"), conf);
}

function clientTarball(outDir: string, jobDir: string, name: string) {
  mkdirSync(join(jobDir, name), { recursive: true });
  cpSync(join(outDir, `${client.name}.tar.gz`), join(jobDir, name, "client.tar.gz"));
}

describe.skipIf(!available)("a Debian client on a booted systemd guest (QEMU)", () => {
  it("activates, mounts through the tunnels, survives a tunnel restart, a failover, a reboot, a removed mount and revocation", { timeout: 45 * 60_000 }, async () => {
    const image = execFileSync("bash", [join(vmDir, "build-image.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 20 * 60_000 }).trim().split("\n").pop()!;
    const job = tempDir("f3s-vm-job-");
    const secrets = join(tempDir(), "secrets");
    const out = join(tempDir(), "out");
    const specPath = await release(specV1, out, secrets);
    clientTarball(out, job, "v1");
    serverFiles(out, job, "server-v1");
    await release(specV2, out, secrets);
    clientTarball(out, job, "v2");
    const io = { stdout: () => {}, stderr: () => {}, isTTY: false, env: {}, cwd: tempDir(), now: () => new Date() };
    writeFileSync(specPath, specV2);
    expect(await runMain(["pki", "revoke", specPath, client.name, "--secrets", secrets], io)).toBe(0);
    await release(specV2, out, secrets);
    clientTarball(out, job, "v3");
    serverFiles(out, job, "server-v3");
    const env = {
      VIP: model.vip.address,
      PORT: String(model.nfs.tlsPort),
      DOMAIN: model.domain,
      STUNNEL_UNIT: client.platform.stunnelUnit,
      EXPORT_DIRS: kept.v4Path.slice(1),
      MOUNTS_V1: client.mounts.map((m) => m.mountpoint).join(" "),
      KEPT_MOUNT: kept.mountpoint,
      KEPT_UNIT: kept.unit,
      KEPT_EXPORT_DIR: kept.v4Path.slice(1),
      REMOVED_MOUNT: removed.mountpoint,
      REMOVED_UNIT: removed.unit,
    };
    writeFileSync(join(job, "env"), Object.entries(env).map(([k, v]) => `${k}='${v}'`).join("\n") + "\n");
    for (const f of ["boot", "driver"]) cpSync(join(vmDir, "guest", f), join(job, f));

    const results = process.env.F3S_VM_RESULTS ?? tempDir("f3s-vm-results-");
    const run = spawnSync("bash", [join(vmDir, "run-vm.sh"), image, job, results, String(30 * 60)], { encoding: "utf8" });
    const read = (f: string) => (existsSync(join(results, f)) ? readFileSync(join(results, f), "utf8") : "");
    const context = `results in ${results}\nqemu: ${run.status} ${run.stderr}\nboot.log:\n${read("boot.log")}\ndriver.log:\n${read("driver.log")}`;
    const checks = read("checks").trim().split("\n").filter(Boolean);
    const failed = checks.filter((c) => !c.startsWith("ok "));
    expect(failed, context).toEqual([]);
    // Every check ran, through both boots (the last is written just before the poweroff).
    for (const name of [
      "extract-v1-changes-nothing-live", "activate-v1-idempotent", `findmnt ${kept.mountpoint}`, "guard-nobody-refused", "busy-mount-survives-tunnel-restart", "failover-repaired-by-monitor",
      `after-reboot no spurious repair of ${kept.mountpoint}`, "extract-v2-changes-nothing-live", "check-v2-changes-nothing", "removed-mount-gone", "activate-v2-idempotent",
      "rollback-restores-v1-byte-for-byte", `after-rollback mounted ${removed.mountpoint}`, "rollback-again-changes-nothing", "revoked-client-refused", "renewed-client-mount-back",
    ]) {
      expect(checks, `${name}\n${context}`).toContain(`ok ${name}`);
    }
    expect(run.status, context).toBe(0);
    const metrics = Object.fromEntries(read("metrics").trim().split("\n").map((l) => l.split(" ") as [string, string]));
    console.log(`VM: ${checks.length} checks passed; boot ${metrics.boot_seconds} s, failover repaired in ${metrics.failover_repair_seconds} s, renewed mount back in ${metrics.renewed_mount_back_seconds} s`);
  });
});
