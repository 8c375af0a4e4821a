// The user's escape hatch (spec `overrides:`): extra files and patches to generated files, per host
// or per role, instead of a fork of templates/. This module reads them from the spec (a file's
// `source` from beside it) with every finding located; render/overrides.ts applies them to a host's
// rendered files, where a patch that no longer finds its text (after an f3s-gen update) is an error
// at its line, never dropped in silence.
import { error, type Diagnostic } from "../diag/diagnostic.js";
import { readBesideSpec } from "./beside-spec.js";
import { closest } from "./suggest.js";
import type { Spec } from "./types.js";

export interface OverrideFile {
  /** Relative to /, as the artifacts' paths are. */
  path: string;
  mode: number;
  content: Buffer;
  /** Where it is written in the spec (for errors found at render time). */
  pointer: string;
}

export interface OverridePatch {
  path: string;
  find: string;
  replace: string;
  pointer: string;
}

export interface Override {
  hosts: string[];
  roles: string[];
  files: OverrideFile[];
  patches: OverridePatch[];
}

/** f3s-gen's own files and state: an override there would break the release itself. */
const OWN = [/^var\/db\/f3s(\/|$)/, /^var\/lib\/f3s(\/|$)/, /^usr\/local\/sbin\/f3s-activate$/, /^usr\/local\/share\/f3s\/MANIFEST$/];

/** A source file is a few kilobytes; far more is a mistake. */
const MAX_SOURCE_BYTES = 1 << 20;

export function readOverrides(spec: Spec, specPath: string | undefined, out: Diagnostic[]): Override[] {
  const names = [spec.storage.nodes.map((n) => n.name), spec.clients.map((c) => c.name), (spec.members ?? []).map((m) => m.name)].flat();
  return (spec.overrides ?? []).map((o, i) => {
    const at = `/overrides/${i}`;
    if (!o.hosts && !o.roles) out.push(error("override-targets", at, "this override names no hosts and no roles", "add hosts: [<name>, ...] or roles: [storage|client|member]"));
    (o.hosts ?? []).forEach((h, j) => {
      if (names.includes(h)) return;
      const near = closest(h, names);
      out.push(error("override-host", `${at}/hosts/${j}`, `no host ${JSON.stringify(h)} in the spec`, near ? `did you mean ${JSON.stringify(near)}?` : `hosts are: ${names.join(", ")}`));
    });
    const files: OverrideFile[] = (o.files ?? []).flatMap((f, j) => {
      const p = `${at}/files/${j}`;
      const path = f.path.replace(/^\/+/, "");
      if (OWN.some((re) => re.test(path))) {
        out.push(error("override-own-file", `${p}/path`, `${f.path} is f3s-gen's own (the release and its record)`, "choose another path"));
        return [];
      }
      if (f.path.split("/").some((part) => part === "." || part === "..")) {
        out.push(error("override-path", `${p}/path`, `${f.path} is not a plain absolute path`, "write it without . or .. components"));
        return [];
      }
      if ((f.content === undefined) === (f.source === undefined)) {
        out.push(error("override-content", p, "a file needs exactly one of content and source", "write its text as content: |, or name a file beside the spec as source:"));
        return [];
      }
      let content: Buffer;
      if (f.content !== undefined) content = Buffer.from(f.content);
      else {
        const read = readBesideSpec(f.source!, { specPath, maxBytes: MAX_SOURCE_BYTES });
        if (!read.ok) {
          out.push(error("override-source", `${p}/source`, `cannot read source: ${read.problem}`, read.hint ?? "name a regular file, relative to the spec's directory"));
          return [];
        }
        content = read.bytes;
      }
      return [{ path, mode: parseInt(f.mode ?? "0644", 8), content, pointer: p }];
    });
    const patches = (o.patches ?? []).map((x, j) => ({ path: x.path.replace(/^\/+/, ""), find: x.find, replace: x.replace, pointer: `${at}/patches/${j}` }));
    return { hosts: o.hosts ?? [], roles: o.roles ?? [], files, patches };
  });
}

/** The overrides that apply to a host of `role` named `name`. */
export function overridesFor(overrides: readonly Override[], name: string, role: string): Override[] {
  return overrides.filter((o) => o.hosts.includes(name) || o.roles.includes(role));
}

/** systemd drop-ins among a host's override files: etc/systemd/system/<unit>.d/<name>.conf. */
export const DROP_IN = /^etc\/systemd\/system\/([^/]+)\.d\/[^/]+\.conf$/;
