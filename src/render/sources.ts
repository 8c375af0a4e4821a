// The template files as text: partials (files starting with "_") by name, templates by path. Shared
// by the run-time loader and the build-time precompiler (scripts/compile-templates.mjs).
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";

/** Strict: an unknown variable is an error. noEscape: these are config files, not HTML. */
export const COMPILE_OPTIONS = { strict: true, noEscape: true } as const;

export interface TemplateSources {
  partials: Map<string, string>;
  templates: Map<string, string>;
}

export function readTemplateSources(dir: string): TemplateSources {
  const sources: TemplateSources = { partials: new Map(), templates: new Map() };
  // Names are built up during the walk: path.relative() on every file cost ~5 ms of a warm build.
  const walk = (d: string, prefix: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = `${d}/${entry.name}`;
      if (entry.isDirectory()) walk(full, `${prefix}${entry.name}/`);
      else if (entry.name.endsWith(".hbs")) {
        const text = readFileSync(full, "utf8");
        if (entry.name.startsWith("_")) sources.partials.set(entry.name.slice(1, -4), text);
        else sources.templates.set(prefix + entry.name, text);
      }
    }
  };
  walk(dir, "");
  return sources;
}

export function templatesHash(sources: TemplateSources): string {
  const h = createHash("sha256");
  for (const kind of ["partials", "templates"] as const) for (const [name, text] of sources[kind]) h.update(`${kind}\0${name}\0${text}\0`);
  return h.digest("hex");
}
