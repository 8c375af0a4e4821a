// Rendering is pure: model + secrets + templates in, {host: [{path, mode, content}]} out. The caller
// writes. Templates are strict (an unknown variable is an error, not an empty string).
import { createHash, createHmac } from "node:crypto";
import { createRequire } from "node:module";
import type { Model, HostRef } from "../spec/model.js";
import type { Secrets } from "../pki/secrets.js";
import { artifacts, MANIFEST_PATH, MANIFEST_TEMPLATE, PUBLIC, UNHASHED_FILES, type Artifact } from "./artifacts.js";
import { hostContext, type HostContext } from "./context.js";
import { applyOverrides } from "./overrides.js";
import { overridesFor } from "../spec/overrides.js";
import type { Diagnostic } from "../diag/diagnostic.js";
import { registerHelpers } from "./helpers.js";
import { COMPILE_OPTIONS, readTemplateSources, templatesHash } from "./sources.js";
import { handlebarsRuntime, precompiledTemplates } from "../precompiled.js";

const require = createRequire(import.meta.url);
type Hb = typeof import("handlebars");

export interface RenderedFile {
  path: string;
  mode: number;
  content: Buffer;
}

export interface HostFiles {
  host: HostRef;
  files: RenderedFile[];
}

export type TemplateSet = Map<string, HandlebarsTemplateDelegate>;

/**
 * Loads every template under `dir`: partials (files starting with `_`) by name, the rest by path.
 * Uses the build's precompiled templates (and only Handlebars' runtime) when they are current.
 */
export function loadTemplates(dir: string): TemplateSet {
  const sources = readTemplateSources(dir);
  const built = precompiledTemplates();
  const ready = built?.hash === templatesHash(sources) ? built : undefined;
  const hb: Hb = (ready ? handlebarsRuntime() : (require("handlebars") as Hb)).create();
  registerHelpers(hb);
  const set: TemplateSet = new Map();
  if (ready) {
    for (const [name, spec] of Object.entries(ready.partials)) hb.registerPartial(name, hb.template(spec));
    for (const [name, spec] of Object.entries(ready.templates)) set.set(name, hb.template(spec));
  } else {
    for (const [name, text] of sources.partials) hb.registerPartial(name, text);
    for (const [name, text] of sources.templates) set.set(name, hb.compile(text, COMPILE_OPTIONS));
  }
  return set;
}

export function renderOne(templates: TemplateSet, name: string, ctx: object): Buffer {
  const template = templates.get(name);
  if (!template) throw new Error(`template ${name} is missing`);
  try {
    return Buffer.from(template(ctx), "utf8");
  } catch (e) {
    throw new Error(`template ${name}: ${(e as Error).message}`);
  }
}

function artifactFiles(a: Artifact, ctx: HostContext, templates: TemplateSet): RenderedFile[] {
  if (!a.roles.includes(ctx.host.role) || (a.when && !a.when(ctx))) return [];
  const items = a.each ? a.each(ctx) : [undefined];
  return items.map((item) => ({
    path: typeof a.path === "string" ? a.path : a.path(ctx, item),
    mode: a.mode,
    content: renderOne(templates, a.template, item === undefined ? ctx : { ...ctx, item }),
  }));
}

export function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * What the MANIFEST lists for a file whose one secret is short (the CARP password in netif): not
 * its hash, which would give the password away to anyone who tries passwords, but a MAC keyed with
 * a key derived from the CA's private key, which never leaves the secrets directory. It still
 * changes whenever the file does, so the release id (the MANIFEST's hash) does too; hosts compare
 * only the mode of such a file.
 */
export function manifestMac(secrets: Secrets, content: Buffer): string {
  const key = createHash("sha256").update("f3s-gen manifest mac\0").update(secrets.ca.keyPem).digest();
  return "mac:" + createHmac("sha256", key).update(content).digest("hex");
}

/**
 * What a host's overrides would do wrong (patches that no longer apply, ...), before anything is
 * written. Only hosts that have overrides are rendered for it (packing renders them again).
 */
export function overrideProblems(model: Model, secrets: Secrets, templates: TemplateSet): Diagnostic[] {
  return model.hosts
    .filter((h) => overridesFor(model.overrides, h.name, h.role).length)
    .flatMap((h) => applyOverrides(model, h, artifacts.flatMap((a) => artifactFiles(a, hostContext(model, h, secrets), templates))).problems);
}

export function renderHost(model: Model, host: HostRef, secrets: Secrets, templates: TemplateSet): HostFiles {
  const ctx = hostContext(model, host, secrets);
  const applied = applyOverrides(model, host, artifacts.flatMap((a) => artifactFiles(a, ctx, templates)));
  // The pipeline reports these (overrideProblems) before it renders for real.
  if (applied.problems.length) throw new Error(`overrides of ${host.name} do not apply: ${applied.problems[0]!.message}`);
  const files = applied.files;
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new Error(`two artifacts of ${host.name} land at ${f.path}`);
    seen.add(f.path);
  }
  // The manifest lists every other file; it cannot list its own hash.
  const listed = files
    .map((f) => ({ path: f.path, mode: f.mode.toString(8).padStart(4, "0"), sha256: UNHASHED_FILES.has(f.path) ? manifestMac(secrets, f.content) : sha256(f.content) }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  files.push({ path: MANIFEST_PATH, mode: PUBLIC, content: renderOne(templates, MANIFEST_TEMPLATE, { ...ctx, files: listed }) });
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { host, files };
}

export function renderAll(model: Model, secrets: Secrets, templates: TemplateSet): HostFiles[] {
  return model.hosts.map((h) => renderHost(model, h, secrets, templates));
}
