// Hosts that the spec no longer has but an earlier build gave a tarball: each gets a decommission
// tarball, out/retired/<host>.tar.gz, whose one script undoes what f3s-gen installed there (it
// reads the host's own record of it) and touches no data. Whether the host ran FreeBSD or Linux
// is read from the tarball an earlier build wrote, so a retired host stays retired in every later
// build until it is back in the spec.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Model } from "../spec/model.js";
import { readTarGz } from "../pack/read.js";
import { ACTIVATE_PATH, MONITOR_STATE_DIR, SCRIPT } from "./artifacts.js";
import { renderOne, type RenderedFile, type TemplateSet } from "./engine.js";
import { compareStrings } from "../order.js";
import { releaseOf, type Family } from "./release.js";

export interface RetiredHost {
  name: string;
  family: Family;
}

export const RETIRED_DIR = "retired";
export const DECOMMISSION_PATH = "usr/local/sbin/f3s-decommission";

/**
 * Which family a host of an earlier build was: from where its tarball stages the release or, in a
 * decommission tarball (and a tarball of a build before releases were staged), from the script's
 * shell: FreeBSD's scripts are /bin/sh, the Linux clients' /bin/bash.
 */
function familyOfTarball(tarball: string, script: string): Family | undefined {
  try {
    const entries = readTarGz(tarball);
    const release = releaseOf(entries);
    if (release) return release.family;
    const entry = entries.find((f) => f.path === script);
    if (!entry) return undefined;
    return entry.content.subarray(0, 12).toString("latin1").startsWith("#!/bin/bash") ? "linux" : "freebsd";
  } catch {
    return undefined; // not ours or damaged: nothing to decommission from it
  }
}

/**
 * A retired host's name comes from a directory listing, and it ends up in a root shell script on
 * that host (and in the build's summary on a terminal): only a name the spec itself could have given
 * (the schema's hostName rule) is taken; `old$(touch X).tar.gz` or a name with escape bytes is not a
 * host of ours and is left alone.
 */
export const HOST_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const tarballs = (dir: string) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((n) => n.endsWith(".tar.gz"))
        .map((n) => n.slice(0, -".tar.gz".length))
        .filter((n) => HOST_NAME.test(n))
    : [];

/** Hosts with a tarball (or a decommission tarball) in the previous out/ that the model lacks. */
export function retiredHosts(outDir: string, model: Model, reserved: readonly string[]): RetiredHost[] {
  const current = new Set([...model.hosts.map((h) => h.name), ...reserved]);
  const found = new Map<string, Family>();
  for (const name of tarballs(outDir)) {
    if (current.has(name)) continue;
    const family = familyOfTarball(join(outDir, `${name}.tar.gz`), ACTIVATE_PATH);
    if (family) found.set(name, family);
  }
  for (const name of tarballs(join(outDir, RETIRED_DIR))) {
    if (current.has(name) || found.has(name)) continue;
    const family = familyOfTarball(join(outDir, RETIRED_DIR, `${name}.tar.gz`), DECOMMISSION_PATH);
    if (family) found.set(name, family);
  }
  return [...found].map(([name, family]) => ({ name, family })).sort((a, b) => compareStrings(a.name, b.name));
}

export function renderDecommission(model: Model, host: RetiredHost, templates: TemplateSet): RenderedFile[] {
  const name = host.family === "linux" ? "retired/decommission-linux.bash.hbs" : "retired/decommission-freebsd.sh.hbs";
  return [{ path: DECOMMISSION_PATH, mode: SCRIPT, content: renderOne(templates, name, { model, host: { name: host.name, role: "retired" }, monitorStateDir: MONITOR_STATE_DIR }) }];
}
