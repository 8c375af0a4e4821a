// The whole pipeline, stage by stage: spec -> model -> secrets -> rendered files -> tarballs -> out/.
// Each stage returns data; only the last step writes, and it writes out/ atomically.
import { hasErrors, warning, type Diagnostic } from "./diag/diagnostic.js";
import { checkSpecFile, type CheckedSpec } from "./spec/index.js";
import type { Model } from "./spec/model.js";
import { openSecrets, type Secrets } from "./pki/secrets.js";
import { loadTemplates, overrideProblems, renderAll, renderHost, type HostFiles } from "./render/engine.js";
import { locate } from "./diag/locate.js";
import { sortDiagnostics } from "./diag/format.js";
import { renderDecommission, retiredHosts, RETIRED_DIR, type RetiredHost } from "./render/retired.js";
import { packageRoot, templatesDir } from "./paths.js";
import { tarGz } from "./pack/tarball.js";
import { releaseEntries, releaseOf } from "./render/release.js";
import { hostParts, inventoryText, previousSlots, INVENTORY_FILE, PLAYBOOK_DIR, type HostPart } from "./pack/inventory.js";
import { sha256 } from "./render/engine.js";
import { readTarGz } from "./pack/read.js";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkOutputDir, checkSeparate, Staging } from "./pack/output.js";
import { changedZfsKeys, checkOutCluster, clusterFileText, CLUSTER_FILE } from "./pack/identity.js";
import { X509Certificate } from "node:crypto";

export interface BuildOptions {
  specPath: string;
  /** How messages name the spec (what the user typed); defaults to specPath. */
  specName?: string;
  outDir: string;
  secretsDir: string;
  now: Date;
  /** Key generation progress, for a terminal. */
  onProgress?: (done: number, total: number) => void;
  /** Test hook: runs after the staging directory is complete, before it replaces out/. */
  beforeSwap?: () => void;
  /** Write keys.tar.gz even when a key differs from the one out/ holds (the user asked for it). */
  replaceZfsKeys?: boolean;
  /** Where a passwordEnv is looked up (the CLI's environment; process.env when absent). */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface HostSummary {
  name: string;
  /** Its part in the cluster: primary, standby, member or client. */
  role: HostPart;
  /** freebsd, or the client's distribution (rocky, fedora, debian, ubuntu). */
  os: string;
  /** Where the rollout reaches it over SSH. */
  address: string;
  /** The release id the host reports once it activated this tarball (f3s-status). */
  release: string;
  /** Against the previous out/: a host new to it, one whose release changed, or one whose did not. */
  changed: "added" | "changed" | "unchanged";
  tarball: string;
  /** SHA-256 of the tarball (the rollout checks the copy on the host against it). */
  sha256: string;
  files: number;
  bytes: number;
}

export interface BuildResult {
  checked: CheckedSpec;
  diagnostics: Diagnostic[];
  /** Present when the build succeeded. */
  hosts?: HostSummary[];
  /** Hosts no longer in the spec that got a decommission tarball in out/retired/. */
  retired?: RetiredHost[];
  secretChanges: string[];
}

/** The USB key bundle: every raw ZFS key, read-only for root. */
export const KEYS_TARBALL = "keys.tar.gz";
/** The key bundle's name where hosts are listed (show, diff): keys.tar.gz without its suffix. */
export const KEYS_NAME = KEYS_TARBALL.replace(/\.tar\.gz$/, "");

export function renderHosts(model: Model, secrets: Secrets): HostFiles[] {
  return renderAll(model, secrets, loadTemplates(templatesDir));
}

/** Tarballs compressed on the thread pool while the next host renders; at most this many wait in memory. */
const PACK_WINDOW = 4;

/**
 * Renders and packs every host, one at a time, and hands each tarball (and the key bundle) to `sink`
 * as soon as it is made: memory holds a few hosts' files, never the whole cluster's.
 */
export async function packHosts(model: Model, secrets: Secrets, sink: (name: string, data: Buffer) => void, previous: ReadonlyMap<string, string> = new Map()): Promise<HostSummary[]> {
  const templates = loadTemplates(templatesDir);
  const parts = hostParts(model);
  const summaries: HostSummary[] = new Array(model.hosts.length);
  const all: Promise<void>[] = [];
  const active = new Set<Promise<void>>();
  for (const [i, host] of model.hosts.entries()) {
    const { files } = renderHost(model, host, secrets, templates);
    const { id, entries } = releaseEntries(host.role, files);
    const job = tarGz(entries).then((tgz) => {
      const tarball = `${host.name}.tar.gz`;
      sink(tarball, tgz);
      const { part, os, address } = parts.get(host.name)!;
      const before = previous.get(host.name);
      const changed = before === undefined ? "added" : before === id ? "unchanged" : "changed";
      summaries[i] = { name: host.name, role: part, os, address, release: id, changed, tarball, sha256: sha256(tgz), files: files.length, bytes: tgz.length };
    });
    const tracked = job.finally(() => active.delete(tracked));
    tracked.catch(() => {}); // observed by Promise.all below; a failure must not go unhandled meanwhile
    active.add(tracked);
    all.push(tracked);
    if (active.size >= PACK_WINDOW) await Promise.race(active);
  }
  await Promise.all(all);
  sink(KEYS_TARBALL, await tarGz(keyBundleEntries(model, secrets)));
  return summaries;
}

/** The spec's overrides that do not fit what this version generates, located at their lines (none: []). */
function overridesThatFail(checked: CheckedSpec & { model: Model }, secrets?: Secrets): Diagnostic[] {
  if (!checked.model.overrides.length || !secrets) return [];
  return sortDiagnostics(locate(checked.loaded.sourceMap, overrideProblems(checked.model, secrets, loadTemplates(templatesDir))));
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const checked = checkSpecFile(opts.specPath, opts.specName, opts.env);
  const diagnostics = [...checked.diagnostics];
  if (!checked.model) return { checked, diagnostics, secretChanges: [] };
  checkSeparate(opts.outDir, opts.secretsDir);
  checkOutputDir(opts.outDir);
  // A build holds the secrets lock (cli.ts), so it may finish what an interrupted change left.
  const opened = await openSecrets(opts.secretsDir, checked.model, { now: opts.now, onProgress: opts.onProgress, specName: opts.specName ?? opts.specPath, recover: true });
  diagnostics.push(...opened.diagnostics);
  if (!opened.secrets || hasErrors(opened.diagnostics)) return { checked, diagnostics, secretChanges: opened.changes };
  const cluster = { domain: checked.model.domain, ca: new X509Certificate(opened.secrets.ca.certPem).fingerprint256 };
  checkOutCluster(opts.outDir, cluster, opened.lineage ?? []);
  if (!opts.replaceZfsKeys) {
    const keys = new Map(keyBundleEntries(checked.model, opened.secrets).map((k) => [k.path, k.content] as const));
    const changed = changedZfsKeys(opts.outDir, KEYS_TARBALL, keys);
    if (changed.length) return { checked, diagnostics: [...diagnostics, ...changed], secretChanges: opened.changes };
  }
  const overrides = overridesThatFail(checked as CheckedSpec & { model: Model }, opened.secrets);
  if (overrides.length) return { checked, diagnostics: [...diagnostics, ...overrides], secretChanges: opened.changes };
  diagnostics.push(...movedSlots(checked as CheckedSpec & { model: Model }, opts.outDir));
  // Key generation, rendering and packing all happen before anything is recorded: new secrets
  // are committed and out/ replaced only at the end, so a build killed or failing before that
  // changes nothing (the staging directory is dropped by the next run).
  const staging = new Staging(opts.outDir); // also repairs what an interrupted run left
  try {
    const retired = retiredHosts(opts.outDir, checked.model, [KEYS_NAME]);
    const hosts = await packHosts(checked.model, opened.secrets, (name, data) => staging.add(name, data), releasesIn(opts.outDir));
    staging.add(CLUSTER_FILE, clusterFileText(cluster));
    // The rollout: the inventory of this build and the playbooks it runs (out/ is all a deploy needs).
    staging.add(INVENTORY_FILE, inventoryText(checked.model, hosts));
    for (const [rel, data] of playbookFiles()) staging.add(`${PLAYBOOK_DIR}/${rel}`, data);
    // Templates again only when a host is retired (rare): a plain build does not pay for it.
    const templates = retired.length ? loadTemplates(templatesDir) : undefined;
    for (const r of retired) staging.add(`${RETIRED_DIR}/${r.name}.tar.gz`, await tarGz(renderDecommission(checked.model, r, templates!)));
    staging.commit({
      beforeSwap: () => {
        opts.beforeSwap?.();
        opened.commit();
      },
    });
    return { checked, diagnostics, hosts, retired, secretChanges: opened.changes };
  } catch (e) {
    staging.abort();
    throw e;
  }
}

export interface Plan {
  checked: CheckedSpec;
  diagnostics: Diagnostic[];
  /** Every host's files as a build would write them now (absent when the input is invalid). */
  hosts?: Map<string, { path: string; mode: number; content: Buffer }[]>;
  secretChanges: string[];
  /** Certificates only a build would issue: their serial and fingerprint are made then. */
  freshCerts?: string[];
}

/**
 * Everything a build computes, without writing anything: new keys a build would issue exist only in
 * memory here (so their certificates show as changed, but nothing is recorded).
 */
export async function plan(opts: Omit<BuildOptions, "outDir" | "beforeSwap">): Promise<Plan> {
  const checked = checkSpecFile(opts.specPath, opts.specName, opts.env);
  const diagnostics = [...checked.diagnostics];
  if (!checked.model) return { checked, diagnostics, secretChanges: [] };
  const opened = await openSecrets(opts.secretsDir, checked.model, { now: opts.now, onProgress: opts.onProgress, specName: opts.specName ?? opts.specPath });
  diagnostics.push(...opened.diagnostics);
  if (!opened.secrets || hasErrors(opened.diagnostics)) return { checked, diagnostics, secretChanges: opened.changes };
  const overrides = overridesThatFail(checked as CheckedSpec & { model: Model }, opened.secrets);
  if (overrides.length) return { checked, diagnostics: [...diagnostics, ...overrides], secretChanges: opened.changes };
  const hosts = new Map<string, { path: string; mode: number; content: Buffer }[]>();
  for (const h of renderHosts(checked.model, opened.secrets)) hosts.set(h.host.name, h.files);
  hosts.set(KEYS_NAME, keyBundleEntries(checked.model, opened.secrets));
  return { checked, diagnostics, hosts, secretChanges: opened.changes, freshCerts: opened.fresh ?? [] };
}

/**
 * Clients whose service moves to another port than the previous build gave them: a slot not pinned
 * follows the client's place in the list, so removing or inserting a client before it moves it.
 * Until that client's own release is activated, its tunnel goes to its old port, which the storage
 * nodes' new release no longer serves (or serves for another client, which refuses its certificate).
 */
function movedSlots(checked: CheckedSpec & { model: Model }, outDir: string): Diagnostic[] {
  const before = previousSlots(outDir);
  const moved = checked.model.clients.flatMap((c, i) => {
    const old = before.get(c.name);
    if (old === undefined || old === c.slot || c.slotPinned) return [];
    return [
      warning(
        "slot-moved",
        `/clients/${i}`,
        `${c.name}'s stunnel service moves from slot ${old} to ${c.slot} (port ${c.tunnelPort} on the storage VIP): slots not pinned follow the clients' order`,
        `${c.name}'s mounts stall from the storage nodes' activation until its own release is activated (deploy.yml does both); write \`slot: ${old}\` under ${c.name} to keep its port`,
      ),
    ];
  });
  return sortDiagnostics(locate(checked.loaded.sourceMap, moved));
}

/** The release each host's tarball in the previous out/ stages (a host without one is new). */
function releasesIn(outDir: string): Map<string, string> {
  const found = new Map<string, string>();
  if (!existsSync(outDir)) return found;
  for (const n of readdirSync(outDir).filter((f) => f.endsWith(".tar.gz"))) {
    try {
      const release = releaseOf(readTarGz(join(outDir, n)));
      if (release) found.set(n.slice(0, -".tar.gz".length), release.id);
    } catch {
      // not a tarball f3s-gen can read: its host counts as new
    }
  }
  return found;
}

/** The playbooks and their role, as the package ships them (ansible/), by path relative to it. */
function playbookFiles(): [string, Buffer][] {
  const root = join(packageRoot, PLAYBOOK_DIR);
  const walk = (rel: string): [string, Buffer][] =>
    readdirSync(join(root, rel), { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .flatMap((e) => (e.isDirectory() ? walk(rel ? `${rel}/${e.name}` : e.name) : [[rel ? `${rel}/${e.name}` : e.name, readFileSync(join(root, rel, e.name))] as [string, Buffer]]));
  return walk("");
}

function keyBundleEntries(model: Model, secrets: Secrets) {
  return model.zfsKeys.map((k) => ({ path: k.fileName, mode: 0o400, content: secrets.zfsKeys.get(k.fileName)! }));
}
