// FreeBSD's own rules that a spec can break, re-stated from its sources (FreeBSD cannot run here).
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkSpecText } from "../src/spec/index.js";
import { within } from "../src/spec/model.js";
import { packageRoot } from "../src/paths.js";
import { extract, hasTool, tempDir } from "./support.js";
import { Host, keep, release } from "./host-harness.js";
import { exportsFields, exportsLine } from "./exports-file.js";

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

describe("/etc/exports and lo0: each client's line as mountd and network.subr read them", () => {
  // Re-stated from usr.sbin/mountd/mountd.c (get_exportlist_one, do_opt, check_options, get_net,
  // checkmask; the quoted syslog messages are the ones each rule logs) and exports(5); the loopback
  // aliases from libexec/rc/network.subr (ifalias_af_common, ifalias_af_common_handler).
  const spread = spec
    .replace(/^( +)tlsPort: .*$/m, "$&\n$1rootAccess: squash")
    .replace("  - name: earth                     # laptop with full access to the NFS root\n", "  - name: earth\n    rootAccess: root\n    slot: 9\n")
    .replace(/(  - name: r2\n    mounts:\n)/, "$1      - export: /data/nfs/shared\n        mountpoint: /mnt/shared\n");
  const model = checkSpecText("spec.yaml", spread).model!;

  async function generated(text = spread): Promise<{ exports: string; netif: string; stunnel: string }> {
    const out = keep(await release(text.replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256"), join(tempDir(), "out"), join(tempDir(), "secrets")));
    const root = extract(join(out, "f0.tar.gz"));
    const rel = (p: string) => readFileSync(join(root, p), "utf8");
    return { exports: rel("etc/exports"), netif: rel("etc/rc.conf.d/netif"), stunnel: rel("usr/local/etc/stunnel/stunnel.conf") };
  }

  /** check_options and do_opt for one non-V4 line (split by test/exports-file.ts); returns its directories, network and root mapping. */
  function parseLine(fields: string[]) {
    const { dirs, options: opts, optionNames, hosts } = exportsLine(fields);
    expect(hosts, 'a host name after the options would make a second host set ("network/host conflict")').toEqual([]);
    for (const name of optionNames) expect(["maproot", "mapall", "network", "mask", "alldirs", "ro", "sec", "quiet"], `"bad opt ${name}"`).toContain(name);
    expect(dirs.length, "a line exports at least one directory").toBeGreaterThan(0);
    expect(opts.has("maproot") && opts.has("mapall"), '"-mapall and -maproot mutually exclusive"').toBe(false);
    expect(!opts.has("mask") || opts.has("network"), '"-mask requires -network"').toBe(true);
    const network = opts.get("network");
    if (network) {
      expect(opts.has("mask") || network.includes("/"), '"-network requires mask specification"').toBe(true);
      // get_net: a numeric network goes through inet_network(), so "127.1" would mean 127.1.0.0; a
      // full dotted quad is the one address it names.
      expect(network, "a full four-part address").toMatch(/^(\d{1,3}\.){3}\d{1,3}$/);
      // checkmask: ones then zeros. /32 (255.255.255.255) makes the host set exactly one address.
      expect(opts.get("mask")).toBe("255.255.255.255");
    }
    expect(!opts.has("alldirs") || dirs.length === 1, '"-alldirs has multiple directories"').toBe(true);
    return { dirs, network, maproot: opts.get("maproot") };
  }

  it("the V4: line is one, first, names the NFS root, and carries only -sec", async () => {
    const { exports } = await generated();
    const v4 = exportsFields(exports).filter((f) => f[0] === "V4:");
    // get_exportlist_one: "V4:duplicate line, ignored"; "Multiple V4 dirs"; check_options: "only -sec,-net,-mask options allowed on V4:".
    expect(v4).toEqual([["V4:", model.nfs.root, "-sec=sys"]]);
  });

  it("one line per client, for its own address only, with exactly its exports and its root mapping", async () => {
    const { exports } = await generated();
    const parsed = exportsFields(exports).filter((f) => f[0] !== "V4:").map(parseLine);
    expect(parsed.map((p) => p.network)).toEqual(model.clients.map((c) => c.sourceAddress));
    for (const [i, c] of model.clients.entries()) {
      expect(parsed[i]!.dirs, c.name).toEqual(c.exports);
      expect(parsed[i]!.maproot, c.name).toBe(c.maproot);
    }
    // exports(5): "A host may be specified only once for each local file system": every path is on
    // the NFS dataset's file system, so each address is on one line only; and get_exportlist_one drops
    // a line whose directories are on different file systems (f_fsid compared for each).
    expect(new Set(parsed.map((p) => p.network)).size).toBe(parsed.length);
    for (const p of parsed) for (const d of p.dirs) expect(d === model.nfs.root || d.startsWith(model.nfs.root + "/"), d).toBe(true);
    expect(model.clients.find((c) => c.name === "earth")).toMatchObject({ maproot: "root", slot: 9, sourceAddress: "127.0.1.9" });
    expect(model.clients.find((c) => c.name === "r0")).toMatchObject({ maproot: "nobody", slot: 1 });
  });

  // What each address reaches, as FreeBSD applies the lines: exports(5) ("all the above export
  // line(s) should be considered to have the -alldirs flag" for NFSv4) and mountd.c, which hands a
  // line to the mount of the file system its directories are on: the whole file system, and none
  // below it that has lines of its own.
  function reach(exports: string, fileSystems: string[]) {
    const fsOf = (p: string) => fileSystems.filter((f) => within(p, f)).sort((a, b) => b.length - a.length)[0]!;
    const byAddress = new Map<string, string[]>();
    const seen = new Set<string>();
    for (const line of exportsFields(exports).filter((f) => f[0] !== "V4:").map(parseLine)) {
      const fs = new Set(line.dirs.map(fsOf));
      // get_exportlist_one compares each directory's f_fsid with the first's: "dirs must be in the same filesystem".
      expect(fs.size, `${line.dirs.join(" ")}: one file system per line`).toBe(1);
      // exports(5): "A host may be specified only once for each local file system".
      const key = `${line.network} ${[...fs][0]}`;
      expect(seen.has(key), `${key}: a host once per file system`).toBe(false);
      seen.add(key);
      byAddress.set(line.network!, [...(byAddress.get(line.network!) ?? []), ...fs].sort());
    }
    return byAddress;
  }

  it("with export datasets, each client's lines reach exactly the file systems of its exports", async () => {
    const text = spread.replace(/^( +)tlsPort: .*$/m, "$&\n$1exportDatasets: true");
    const m = checkSpecText("spec.yaml", text).model!;
    const fileSystems = [m.nfs.root, ...m.nfs.fileSystems.map((f) => f.path)];
    expect(fileSystems).toEqual(["/data/nfs", "/data/nfs/k3svolumes", "/data/nfs/shared"]);
    const reached = reach((await generated(text)).exports, fileSystems);
    for (const c of m.clients) {
      const fs = reached.get(c.sourceAddress)!;
      // Every file system it reaches lies within one of its exports, and each export is one.
      for (const f of fs) expect(c.exports.some((e) => within(f, e)), `${c.name} reaches ${f}`).toBe(true);
      for (const e of c.exports) expect(fs, c.name).toContain(e);
    }
    expect(reached.get(m.clients.find((c) => c.name === "earth")!.sourceAddress)).toEqual(fileSystems);
    expect(reached.get(m.clients.find((c) => c.name === "r2")!.sourceAddress)).toEqual(["/data/nfs/k3svolumes", "/data/nfs/shared"]);
  });

  it("without them, a worker's line reaches the whole NFS dataset (what activation and f3s-status warn about)", async () => {
    const reached = reach((await generated()).exports, [model.nfs.root]);
    expect(reached.get(model.clients.find((c) => c.name === "r0")!.sourceAddress)).toEqual([model.nfs.root]);
  });

  it("each client's address is a lo0 alias netif adds at boot, and its stunnel service connects from it", async () => {
    const { netif, stunnel } = await generated();
    // network.subr, ifalias_af_common: ifconfig_lo0_aliases is a list of "inet ADDR/PLEN" groups,
    // split at each address family keyword; ifalias_af_common_handler runs
    // `ifconfig lo0 inet ADDR/PLEN alias` for each.
    const value = /^ifconfig_lo0_aliases="([^"]*)"$/m.exec(netif)![1]!;
    const groups = value.split(/ (?=inet )/);
    expect(groups).toEqual(model.clients.map((c) => `inet ${c.sourceAddress}/32`));
    // Each service: accept on the VIP at its own port, connect from its own address, its own allow-list.
    const services = stunnel.split(/^\[/m).slice(1).map((block) => ({ name: block.split("]")[0], conf: Object.fromEntries(block.split("\n").filter((l) => / = /.test(l)).map((l) => l.split(" = ") as [string, string])) }));
    expect(services.map((s) => s.name)).toEqual(model.clients.map((c) => `nfs-${c.name}`));
    for (const c of model.clients) {
      const s = services.find((x) => x.name === `nfs-${c.name}`)!.conf;
      expect(s).toMatchObject({ accept: `${model.vip.address}:${model.nfs.tlsPort + c.slot}`, connect: "127.0.0.1:2049", local: c.sourceAddress, CAfile: `/usr/local/etc/stunnel/ca/clients/${c.name}.pem` });
    }
  });
});
