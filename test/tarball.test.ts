// The tarball contract (design/ARTIFACTS.md, "Every tarball") checked on the raw tar headers.
import { runMain } from "../src/cli.js";
import { describe, expect, it, beforeAll } from "vitest";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { buildCase, extract, fixturesDir, hasTool, readOut, readOutRaw, tempDir, type Built, type TarHeader } from "./support.js";
import { spawnSync } from "node:child_process";
import { FIXED_MTIME } from "../src/pack/tarball.js";

let example: Built;
let other: Built;
beforeAll(async () => {
  [example, other] = await Promise.all([buildCase("example"), buildCase("other")]);
});

function expectedMode(name: string): number {
  // Private keys, and netif: it carries the CARP password (ARTIFACTS.md).
  if (/(-key\.pem|-stunnel\.pem)$/.test(name) || name === "etc/rc.conf.d/netif") return 0o600;
  if (/^usr\/local\/(s?bin|libexec|etc\/rc\.d)\//.test(name)) return 0o755;
  return 0o644;
}

describe("every host tarball", () => {
  it("has regular-file entries only, relative and sorted, root-owned without names, one fixed mtime", () => {
    for (const [tarball, entries] of readOutRaw(example.outDir)) {
      const names = entries.map((e) => e.name);
      expect(names, tarball).toEqual([...names].sort());
      for (const e of entries) {
        expect(e.typeflag, `${tarball}:${e.name}`).toBe("0");
        expect(e.name.startsWith("/") || e.name.includes("..")).toBe(false);
        expect([e.uid, e.gid, e.uname, e.gname]).toEqual([0, 0, "", ""]);
        expect(e.mtime).toBe(FIXED_MTIME.getTime() / 1000);
      }
    }
  });

  it("gives scripts 0755, private keys 0600 and everything else 0644", () => {
    for (const built of [example, other]) {
      for (const [tarball, entries] of readOut(built.outDir)) {
        if (tarball === "keys.tar.gz") continue;
        for (const e of entries) expect(e.mode.toString(8), `${tarball}:${e.name}`).toBe(expectedMode(e.name).toString(8));
      }
    }
  });

  it("lists every other file with its mode and sha256 in the MANIFEST", () => {
    const entries = readOut(example.outDir).get("f0.tar.gz")!;
    const manifest = entries.find((e) => e.name === "usr/local/share/f3s/MANIFEST")!.content.toString();
    const lines = manifest.split("\n").filter((l) => l && !l.startsWith("#"));
    const others = entries.filter((e) => e.name !== "usr/local/share/f3s/MANIFEST");
    expect(lines).toHaveLength(others.length);
    for (const e of others) {
      // netif's only unknown is the CARP password: its hash would give it away, so it has a MAC
      // with a key only the builder has (it still changes the release id when the password does).
      if (e.name === "etc/rc.conf.d/netif") {
        expect(lines).toContainEqual(expect.stringMatching(/^0600 mac:[0-9a-f]{64} \/etc\/rc\.conf\.d\/netif$/));
        continue;
      }
      const sha = execFileSync("sha256sum", { input: e.content }).toString().split(" ")[0];
      expect(lines).toContain(`${e.mode.toString(8).padStart(4, "0")} ${sha} /${e.name}`);
    }
  });

  it("a changed CARP password changes the storage nodes' release ids, and nothing else's", async () => {
    const spec = join(tempDir(), "spec.yaml");
    writeFileSync(spec, readFileSync(join(fixturesDir, "valid/example/spec.yaml"), "utf8").replace("password: testpass", "password: N3wCarpPass"));
    const changed = await buildCase("example", { secretsDir: example.secretsDir, spec });
    const ids = (b: Built) => Object.fromEntries(b.result.hosts!.map((h) => [h.name, h.release]));
    const [before, after] = [ids(example), ids(changed)];
    for (const host of Object.keys(before)) expect(after[host] !== before[host], host).toBe(host === "f0" || host === "f1");
  });

  it("prints no hash of netif anywhere: not in the MANIFEST, not in show, not in show --json", async () => {
    const netif = readOut(example.outDir).get("f0.tar.gz")!.find((e) => e.name === "etc/rc.conf.d/netif")!;
    const hash = execFileSync("sha256sum", { input: netif.content }).toString().split(" ")[0]!;
    let out = "";
    const io = { stdout: (s: string) => (out += s), stderr: (s: string) => (out += s), isTTY: false, env: {}, cwd: example.outDir, now: () => new Date() };
    await runMain(["show", "f0", "--out", example.outDir], io);
    await runMain(["show", "f0", "--out", example.outDir, "--json"], io);
    for (const e of readOut(example.outDir).get("f0.tar.gz")!) out += e.content.toString("latin1");
    expect(out).toContain("/etc/rc.conf.d/netif");
    expect(out).not.toContain(hash);
  });

  it("extracts with the system tar without creating directory entries", () => {
    const root = extract(join(example.outDir, "r0.tar.gz"));
    const listing = execFileSync("tar", ["-tvzf", join(example.outDir, "r0.tar.gz")]).toString();
    expect(listing.split("\n").filter((l) => l.startsWith("d"))).toEqual([]);
    expect(statSync(join(root, "etc/stunnel/r0-stunnel.pem")).mode & 0o777).toBe(0o600);
  });

  it.skipIf(!hasTool("bsdtar"))("extracts with bsdtar (FreeBSD's tar) with the listed modes and root ownership", () => {
    for (const host of ["f0", "f1", "f2"]) {
      const dir = tempDir("f3s-bsdtar-");
      const r = spawnSync("bsdtar", ["-xzpf", join(example.outDir, `${host}.tar.gz`), "-C", dir], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      for (const e of readOutRaw(example.outDir).get(`${host}.tar.gz`)!) {
        const st = statSync(join(dir, e.name));
        expect((st.mode & 0o7777).toString(8), `${host}:${e.name}`).toBe(e.mode.toString(8));
        if (process.getuid?.() === 0) expect([st.uid, st.gid], `${host}:${e.name}`).toEqual([0, 0]);
      }
    }
  });

  it("never contains the CA key", () => {
    const caKey = readFileSync(join(example.secretsDir, "ca/ca-key.pem"), "utf8").trim();
    for (const [tarball, entries] of readOut(example.outDir)) {
      for (const e of entries) expect(e.content.toString("latin1").includes(caKey), `${tarball}:${e.name}`).toBe(false);
    }
  });

  it("puts private keys only into the tarballs that need them", () => {
    const serverKey = readFileSync(join(example.secretsDir, "server/server-key.pem"), "utf8").trim();
    const r1Key = readFileSync(join(example.secretsDir, "clients/r1-key.pem"), "utf8").trim();
    const holders = (secret: string) =>
      [...readOut(example.outDir)].filter(([, entries]) => entries.some((e) => e.content.toString("latin1").includes(secret))).map(([n]) => n);
    expect(holders(serverKey)).toEqual(["f0.tar.gz", "f1.tar.gz"]);
    expect(holders(r1Key)).toEqual(["r1.tar.gz"]);
  });

  it("holds what ARTIFACTS.md lists for each role of the example", () => {
    const out = readOut(example.outDir);
    const names = (h: string) => out.get(`${h}.tar.gz`)!.map((e) => e.name);
    expect(names("f0")).toEqual(
      expect.arrayContaining([
        "etc/rc.conf.d/netif", "etc/rc.conf.d/nfsd", "etc/rc.conf.d/mountd", "etc/rc.conf.d/rpcbind", "etc/rc.conf.d/nfsuserd",
        "etc/rc.conf.d/stunnel", "etc/rc.conf.d/zrepl", "etc/rc.conf.d/zfskeys", "boot/loader.conf.d/carp.conf",
        "usr/local/etc/devd/carp.conf", "usr/local/bin/carpcontrol.sh", "usr/local/bin/carp", "etc/exports",
        "usr/local/etc/stunnel/stunnel.conf", "usr/local/etc/stunnel/server-cert.pem", "usr/local/etc/stunnel/server-key.pem",
        "usr/local/etc/stunnel/ca/ca-cert.pem", "usr/local/etc/zrepl/zrepl.yml", "usr/local/bin/carp-auto-failback.sh",
        "usr/local/etc/cron.d/carp-auto-failback", "usr/local/share/f3s/hosts", "usr/local/share/f3s/MANIFEST", "usr/local/sbin/f3s-activate",
      ]),
    );
    expect(names("f1")).not.toContain("usr/local/bin/carp-auto-failback.sh");
    expect(names("f1")).not.toContain("usr/local/etc/cron.d/carp-auto-failback");
    expect(names("r0")).toEqual(
      expect.arrayContaining([
        "etc/stunnel/stunnel.conf", "etc/stunnel/r0-stunnel.pem", "etc/stunnel/ca-cert.pem", "etc/idmapd.conf", "etc/sysctl.d/90-f3s-inotify.conf",
        "etc/systemd/system/data-nfs-k3svolumes.mount", "usr/local/bin/check-nfs-mount.sh", "etc/systemd/system/nfs-mount-monitor.service",
        "etc/systemd/system/nfs-mount-monitor.timer",
      ]),
    );
    expect(names("r0")).not.toContain("etc/systemd/system/f3s-nfs-dnat.service");
    expect(names("earth")).toContain("etc/systemd/system/f3s-nfs-dnat.service");
    expect(names("earth")).toContain("etc/systemd/system/data-nfs.mount");
    expect(names("f2")).toEqual(["usr/local/libexec/f3s/activate", "usr/local/sbin/f3s-activate", "usr/local/sbin/f3s-status", "usr/local/share/f3s/MANIFEST", "usr/local/share/f3s/hosts"]);
    const keys = out.get("keys.tar.gz")!;
    expect(keys.map((e) => e.name)).toEqual(
      ["f0", "f1", "f2"].flatMap((h) => ["bhyve", "zdata"].map((k) => `${h}.lan.buetow.org:${k}.key`)),
    );
    for (const k of keys) expect([k.mode, k.size]).toEqual([0o400, 32]);
  });
});

describe("determinism", () => {
  it("gives byte-identical tarballs for the same spec and secrets", async () => {
    const again = await buildCase("example", { secretsDir: example.secretsDir });
    for (const n of readdirSync(example.outDir).filter((n) => n.endsWith(".tar.gz"))) {
      expect(readFileSync(join(again.outDir, n)).equals(readFileSync(join(example.outDir, n))), n).toBe(true);
    }
  });
});

describe("a different cluster", () => {
  // Anything of the example cluster that shows up in another cluster's output was baked in.
  const exampleValues = [/\bf[012]\b/, /\br[012]\b/, /\bearth\b/, /\bre0\b/, /192\.168\./, /\b2323\b/, /\b8888\b/, /lan\.buetow/, /buetow/, /testpass/, /\bzdata\b/, /\bzroot\b/, /k3svolumes/, /f3s-storage-ha/, /\/data\/nfs/, /\/keys\//];
  const textOf = (e: TarHeader) => (/\.pem$/.test(e.name) ? "" : e.content.toString("utf8"));

  it("finds every one of those patterns in the example's own output (so the check below can fail)", () => {
    const all = [...readOut(example.outDir)].flatMap(([t, entries]) => [t, ...entries.map((e) => e.name + "\n" + textOf(e))]).join("\n");
    for (const re of exampleValues) expect(re.test(all), String(re)).toBe(true);
  });

  it("leaves no trace of the example's names, addresses or ports in any generated file", () => {
    for (const [tarball, entries] of readOut(other.outDir)) {
      expect(tarball).not.toMatch(/^(f[012]|r[012]|earth)\./);
      for (const e of entries) {
        for (const re of exampleValues) {
          expect(re.test(e.name), `${tarball}:${e.name} (path) matches ${re}`).toBe(false);
          expect(re.test(textOf(e)), `${tarball}:${e.name} matches ${re}`).toBe(false);
        }
      }
    }
  });
});
