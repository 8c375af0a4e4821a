// Rendering is pure: model + secrets + templates in, {host: [{path, mode, content}]} out. The caller
// writes. Templates are strict (an unknown variable is an error, not an empty string).
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import Handlebars from "handlebars";
import type { Model, HostRef } from "../spec/model.js";
import type { Secrets } from "../pki/secrets.js";
import { artifacts, MANIFEST_PATH, MANIFEST_TEMPLATE, PUBLIC, type Artifact } from "./artifacts.js";
import { hostContext, type HostContext } from "./context.js";
import { registerHelpers } from "./helpers.js";

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

/** Loads every template under `dir`: partials (files starting with `_`) by name, the rest by path. */
export function loadTemplates(dir: string): TemplateSet {
  const hb = Handlebars.create();
  registerHelpers(hb);
  const set: TemplateSet = new Map();
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".hbs")) {
        const rel = relative(dir, full).split(sep).join("/");
        const source = readFileSync(full, "utf8");
        if (entry.name.startsWith("_")) hb.registerPartial(entry.name.slice(1, -4), source);
        else set.set(rel, hb.compile(source, { strict: true, noEscape: true }));
      }
    }
  };
  walk(dir);
  return set;
}

function renderOne(templates: TemplateSet, name: string, ctx: object): Buffer {
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

export function renderHost(model: Model, host: HostRef, secrets: Secrets, templates: TemplateSet): HostFiles {
  const ctx = hostContext(model, host, secrets);
  const files = artifacts.flatMap((a) => artifactFiles(a, ctx, templates));
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new Error(`two artifacts of ${host.name} land at ${f.path}`);
    seen.add(f.path);
  }
  // The manifest lists every other file; it cannot list its own hash.
  const listed = files
    .map((f) => ({ path: f.path, mode: f.mode.toString(8).padStart(4, "0"), sha256: sha256(f.content) }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  files.push({ path: MANIFEST_PATH, mode: PUBLIC, content: renderOne(templates, MANIFEST_TEMPLATE, { ...ctx, files: listed }) });
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { host, files };
}

export function renderAll(model: Model, secrets: Secrets, templates: TemplateSet): HostFiles[] {
  return model.hosts.map((h) => renderHost(model, h, secrets, templates));
}
