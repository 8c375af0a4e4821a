// FreeBSD's own rules that a spec can break, re-stated from its sources (FreeBSD cannot run here).
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkSpecText } from "../src/spec/index.js";
import { packageRoot } from "../src/paths.js";
import { hasTool, tempDir } from "./support.js";
import { Host, keep, release } from "./host-harness.js";

const spec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");
const withKeyFs = (fs: string) => spec.replace(/^(\s+)keyDirectory: (.*)$/m, `$1keyDirectory: $2\n$1keyDevice: /dev/da0\n$1keyFsType: ${fs}`);

describe("the key stick's file system", () => {
  // sys/fs/msdosfs/msdosfs_conv.c: the unix2dos[] table maps ':' to 0, so unix2dosfn() returns 0 for
  // any name with a ':' and the create fails with EINVAL; the key files are named
  // <fqdn>:<key>.key (what rc.d/zfskeys reads through each root's keylocation=file://...).
  const MSDOS_INVALID = /[":*?<>|\\/]/;

  it("every key file name f3s-gen writes has a ':' (so msdosfs could hold none of them)", () => {
    const checked = checkSpecText("spec.yaml", spec);
    const m = checked.model!;
    const files = m.encryption.roots.map((r) => `${m.primary.fqdn}:${r.key}.key`);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(MSDOS_INVALID.test(f), f).toBe(true);
    expect(m.encryption.nfsKeyFile.split("/").pop()).toMatch(MSDOS_INVALID);
  });

  it("keyFsType: msdosfs is an error at keyFsType that says why and what to do; ufs builds", () => {
    const refused = checkSpecText("spec.yaml", withKeyFs("msdosfs"));
    const errors = refused.diagnostics.filter((d) => d.severity === "error");
    expect(errors.map((d) => [d.code, d.pointer])).toEqual([["key-fs-msdosfs", "/storage/encryption/keyFsType"]]);
    expect(errors[0]!.location).toMatchObject({ file: "spec.yaml" });
    expect(errors[0]!.location!.line).toBeGreaterThan(1);
    expect(errors[0]!.message).toMatch(/':'/);
    expect(errors[0]!.hint).toMatch(/newfs/);
    const ufs = checkSpecText("spec.yaml", withKeyFs("ufs"));
    expect(ufs.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });
});

describe.skipIf(!hasTool("dash", ["-c", "true"]) || !hasTool("flock", ["--version"]))("rc.conf and rc.conf.d/netif", () => {
  // libexec/rc/rc.subr, load_rc_config: /etc/rc.conf first, then /etc/rc.conf.d/<name>; the later
  // assignment of ifconfig_<if>_alias0 wins, so the host's own alias0 would silently be gone.
  it("activation warns when /etc/rc.conf already has the alias index the VIP uses", async () => {
    const out = keep(await release(spec.replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256"), join(tempDir(), "out"), join(tempDir(), "secrets")));
    const h = new Host("f0");
    writeFileSync(join(h.root, "etc/rc.conf"), 'hostname="f0"\nifconfig_re0_alias0="inet 192.168.1.200/32"\n');
    h.extract(join(out, "f0.tar.gz"));
    const r = h.activate();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/WARNING: \/etc\/rc\.conf sets ifconfig_re0_alias0 too, and \/etc\/rc\.conf\.d\/netif \(the CARP VIP\) replaces it at boot/);
    const clean = new Host("f0");
    clean.extract(join(out, "f0.tar.gz"));
    expect(clean.activate().stderr).not.toMatch(/alias0 too/);
  });
});
