// A simulated host for lifecycle tests: an extracted root plus the stand-ins of test/stubs, which
// keep state (running services, enabled units, interface aliases, ZFS properties), and the builds
// of successive releases into one out/ with one secrets directory, as a user makes them.
import { expect } from "vitest";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
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
      this.sb.dataset("zdata/enc", { keylocation: "prompt" });
      this.sb.dataset("zroot/bhyve", { keylocation: "prompt" });
      if (name === "f0") this.sb.dataset("zdata/enc/nfsdata");
      else this.sb.dataset("zdata/sink/f0/zdata/enc/nfsdata", { keylocation: "prompt", keystatus: "unavailable" });
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

  activate(args: string[] = []) {
    return this.run("usr/local/sbin/f3s-activate", args);
  }

  /** Extracts and activates a release; fails the test on a failed activation. */
  deploy(outDir: string) {
    this.extract(join(outDir, `${this.name}.tar.gz`));
    const r = this.activate();
    expect(r.code, `${this.name}: ${r.stdout}${r.stderr}`).toBe(0);
    return r;
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

  /** Every file with mode and content hash, and the stand-ins' state (not their logs). */
  state(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [dir, prefix] of [[this.root, "/"], [this.sb.state, "stub:"]] as const) {
      for (const rel of listFiles(dir)) {
        if (prefix === "stub:" && /^(calls|syslog|journal)$/.test(rel)) continue;
        const p = join(dir, rel);
        out[prefix + rel] = `${(statSync(p).mode & 0o7777).toString(8)} ${createHash("sha256").update(readFileSync(p)).digest("hex").slice(0, 16)}`;
      }
    }
    return out;
  }
}

export const changeLines = (stdout: string, word: "would" | "changed") =>
  stdout.split("\n").filter((l) => l.startsWith(`f3s-activate: ${word}: `)).map((l) => l.slice(`f3s-activate: ${word}: `.length));

