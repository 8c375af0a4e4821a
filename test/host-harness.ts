// A simulated host for lifecycle tests: an extracted root plus the stand-ins of test/stubs, which
// keep state (running services, enabled units, interface aliases, ZFS properties), and the builds
// of successive releases into one out/ with one secrets directory, as a user makes them.
import { expect } from "vitest";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "../src/pipeline.js";
import { listFiles, tempDir } from "./support.js";
import { Sandbox, plainInterface } from "./script-harness.js";

export type Role = "storage" | "client" | "member";
export const roleOf: Record<string, Role> = { f0: "storage", f1: "storage", f2: "member", r0: "client", r1: "client", r2: "client", earth: "client" };

/** Builds `spec` into `outDir` with `secretsDir` (both kept between releases, as a user would). */
export async function release(spec: string, outDir: string, secretsDir: string): Promise<string> {
  const specPath = join(tempDir(), "spec.yaml");
  writeFileSync(specPath, spec);
  const r = await build({ specPath, outDir, secretsDir, now: new Date() });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((d) => d.message).join("\n"));
  return outDir;
}

/** A snapshot of a release's out/ (out/ is replaced by the next build). */
export function keep(outDir: string): string {
  const copy = join(tempDir(), "out");
  execFileSync("cp", ["-a", outDir, copy]);
  return copy;
}

/** One simulated host: its root file system and the state of the stand-ins. */
export class Host {
  readonly sb = new Sandbox();
  readonly root = tempDir("f3s-host-");
  constructor(readonly name: string) {
    const role = roleOf[name]!;
    mkdirSync(join(this.root, "etc"), { recursive: true });
    writeFileSync(join(this.root, "etc/hosts"), "127.0.0.1 localhost\n::1 localhost\n");
    if (role === "storage") {
      writeFileSync(join(this.root, "etc/fstab"), "# Device\tMountpoint\tFStype\tOptions\tDump\tPass#\n/dev/gpt/swap0\tnone\tswap\tsw\t0\t0\n");
      writeFileSync(join(this.root, "etc/devd.conf"), "# stock devd.conf\n");
      mkdirSync(join(this.root, "data/nfs"), { recursive: true });
      this.sb.set("if/lo0", plainInterface("lo0", "127.0.0.1"));
      this.sb.set("if/re0", plainInterface("re0", name === "f0" ? "192.168.1.130" : "192.168.1.131"));
      this.sb.set("sysctl/vfs.nfs.enable_uidtostring", "0\n");
      this.sb.set("sysctl/vfs.nfsd.enable_stringtouid", "0\n");
      // The packages' rc scripts: what `service zrepl` and `service stunnel` need.
      mkdirSync(join(this.root, "usr/local/etc/rc.d"), { recursive: true });
      for (const pkg of ["zrepl", "stunnel"]) writeFileSync(join(this.root, "usr/local/etc/rc.d", pkg), "#!/bin/sh\n", { mode: 0o755 });
      this.sb.set("zpool/zdata");
      this.sb.set("zpool/zroot");
      this.sb.set("running/cron");
      this.sb.dataset("zdata/enc", { keylocation: "prompt", encryptionroot: "zdata/enc" });
      this.sb.dataset("zroot/bhyve", { keylocation: "prompt", encryptionroot: "zroot/bhyve" });
      if (name === "f0") this.sb.dataset("zdata/enc/nfsdata", { encryptionroot: "zdata/enc" });
      else {
        this.sb.dataset("zdata/sink");
        this.sb.dataset("zdata/sink/f0/zdata/enc/nfsdata", { keylocation: "prompt", keystatus: "unavailable" });
      }
      // The key stick: this node's keys, and on the standby the primary's key of the NFS dataset.
      const keys = [`${name}.lan.buetow.org:zdata.key`, `${name}.lan.buetow.org:bhyve.key`, ...(name === "f1" ? ["f0.lan.buetow.org:zdata.key"] : [])];
      mkdirSync(join(this.root, "keys"), { recursive: true });
      for (const k of keys) writeFileSync(join(this.root, "keys", k), Buffer.alloc(32, 7), { mode: 0o400 });
    }
  }

  /** tar -xzpf <tarball> -C / */
  extract(tarball: string) {
    execFileSync("tar", ["-xzpf", tarball, "-C", this.root]);
  }

  /** Runs an installed script the way root would, with / at this host's root. */
  run(script: string, args: string[] = []) {
    const file = join(this.root, script);
    const shell = readFileSync(file, "utf8").startsWith("#!/bin/bash") ? "bash" : "dash";
    return this.sb.run(shell, this.sb.script(file, { ROOT: this.root }), args);
  }

  /**
   * The installed f3s-activate itself, unchanged: it finds the host's root from where it lies, and
   * runs the staged release's activation from the release's directory in the same way.
   */
  activate(args: string[] = []) {
    return this.sb.run("dash", join(this.root, "usr/local/sbin/f3s-activate"), args);
  }

  /** f3s-activate in a session of its own, with more environment (the kill tests' stand-ins). */
  activateAlone(env: Record<string, string>, args: string[] = []) {
    return this.sb.runAlone("dash", join(this.root, "usr/local/sbin/f3s-activate"), args, env);
  }

  /** Extracts and activates a release; fails the test on a failed activation. */
  deploy(outDir: string) {
    this.extract(join(outDir, `${this.name}.tar.gz`));
    const r = this.activate();
    expect(r.code, `${this.name}: ${r.stdout}${r.stderr}`).toBe(0);
    return r;
  }

  /** The release activated on this host (its id), or "" before the first activation. */
  current(): string {
    for (const dir of ["var/db/f3s", "var/lib/f3s"]) {
      const file = join(this.root, dir, "current");
      if (existsSync(file)) return readFileSync(file, "utf8").trim();
    }
    return "";
  }

  /** The kernel settles the primary's new CARP address as MASTER (devd's part is not simulated). */
  settle() {
    this.sb.set("if/re0", this.sb.read("if/re0").replace(/carp: (BACKUP|INIT) /, "carp: MASTER "));
  }

  /** The primary becomes CARP MASTER (as the kernel would once the VIP is up) and activates again. */
  becomeMaster() {
    this.settle();
    const r = this.activate();
    expect(r.code, r.stderr).toBe(0);
  }

  /**
   * Every file with mode and content hash, and the stand-ins' state (not their logs). The release
   * history (older releases kept for --rollback, which was activated before) differs between a host
   * that went through v1 and one that did not, and is left out.
   */
  state(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [dir, prefix] of [[this.root, "/"], [this.sb.state, "stub:"]] as const) {
      for (const rel of listFiles(dir)) {
        if (prefix === "stub:" && /^(calls|calls\.ts|syslog|journal|kill-count|killed-at)$/.test(rel)) continue;
        if (prefix === "/" && RELEASE_HISTORY.test(rel) && !rel.includes(`/releases/${this.current()}/`)) continue;
        const p = join(dir, rel);
        // An interface's addresses are a set: one added later is listed last, which no program here reads.
        const content = prefix === "stub:" && rel.startsWith("if/") ? readFileSync(p, "utf8").split("\n").sort().join("\n") : readFileSync(p);
        out[prefix + rel] = `${(statSync(p).mode & 0o7777).toString(8)} ${createHash("sha256").update(content).digest("hex").slice(0, 16)}`;
      }
    }
    return out;
  }
}

/** What the state directory keeps of releases other than the one activated. */
const RELEASE_HISTORY = /^var\/(db|lib)\/f3s\/(releases\/|history$|previous$|rolled-back$)/;

/** The "changed: ..." (or "would: ...") lines of f3s-activate or f3s-decommission, without the prefix. */
export const changeLines = (stdout: string, word: "would" | "changed") =>
  stdout
    .split("\n")
    .map((l) => new RegExp(`^f3s-(activate|decommission): ${word}: (.*)$`).exec(l)?.[2])
    .filter((l): l is string => l !== undefined);

