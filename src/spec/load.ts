// Reads the spec and parses it as YAML, keeping the document so that every later diagnostic can be
// traced back to a line and column.
import { statSync } from "node:fs";
import { UnsafeFileError, readSafely } from "../fs-safe.js";
import { LineCounter, isScalar, parseDocument, visit, type Document } from "yaml";
import { error, type Diagnostic } from "../diag/diagnostic.js";
import type { SourceMap } from "../diag/locate.js";
import { findSecrets, maskSource, type SpecSecrets } from "./secret-mask.js";

/** A real spec is a few kilobytes; anything this large is a mistake (or an attack on the parser). */
export const MAX_SPEC_BYTES = 1024 * 1024;

export interface LoadedSpec {
  source: string;
  /** The source with secret values masked: what excerpts in messages may show. */
  display: string;
  /** The secret values found in the source, to mask in messages too. */
  secrets: SpecSecrets;
  sourceMap: SourceMap;
  data: unknown;
  diagnostics: Diagnostic[];
}

export function loadSpecText(file: string, source: string): LoadedSpec {
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  if (source.trim() === "" || /^(\s*#.*\n?)*\s*$/.test(source)) {
    diagnostics.push(error("empty", "", "the spec is empty", "start from the example: `f3s-gen init spec.yaml`"));
    const secrets = findSecrets(source);
    return { source, display: maskSource(source, secrets), secrets, sourceMap: { file, document: undefined, lineCounter }, data: undefined, diagnostics };
  }
  // merge: YAML's `<<: *anchor` merge key, so that identical workers can share their settings.
  const document: Document = parseDocument(source, { lineCounter, uniqueKeys: true, prettyErrors: false, merge: true });
  // After the first syntax error the parser's view of the structure is a guess; what follows is
  // mostly the same mistake seen again. Duplicate keys are independent findings: all are reported.
  const firstSyntax = document.errors.find((e) => e.code !== "DUPLICATE_KEY");
  // Several repeated keys in one mapping are one mistake, most often a list item missing its "-":
  // one finding at the first repeat, naming them all.
  const repeats = repeatedKeysByMap(document);
  const folded = new Set<number>();
  for (const group of repeats.values()) {
    if (group.length < 2) continue;
    const [first, ...rest] = group;
    for (const r of rest) folded.add(r.offset);
    const pos = lineCounter.linePos(first!.offset);
    diagnostics.push({
      ...error(
        "yaml.duplicate-keys",
        "",
        `the keys ${group.map((r) => JSON.stringify(r.key)).join(", ")} appear twice in one mapping`,
        `is a list item missing its "- "? Start the second item with "- ${group[0]!.key}: ..." at line ${pos.line}; otherwise remove or merge the repeated keys`,
      ),
      location: { file, line: pos.line, col: pos.col },
    });
    folded.add(first!.offset);
  }
  for (const e of document.errors.filter((e) => (e.code === "DUPLICATE_KEY" && !folded.has(e.pos[0])) || e === firstSyntax)) {
    const duplicate = e.code === "DUPLICATE_KEY";
    const tabs = /tab/i.test(e.message);
    const pos = lineCounter.linePos(e.pos[0]);
    diagnostics.push({
      ...error(
        duplicate ? "yaml.duplicate-key" : "yaml.syntax",
        "",
        duplicate ? "duplicate key: " + firstLine(e.message) : "YAML syntax error: " + firstLine(e.message),
        duplicate
          ? "each key may appear once per mapping; remove or merge the repeated one"
          : tabs
            ? "indent with spaces: YAML does not allow tabs for indentation"
            : "fix the YAML syntax at this position (indentation, quotes, colons, brackets)",
      ),
      location: { file, line: pos.line, col: pos.col },
    });
  }
  for (const w of document.warnings) {
    const pos = lineCounter.linePos(w.pos[0]);
    diagnostics.push({ ...error("yaml.syntax", "", firstLine(w.message), "write plain YAML 1.2"), location: { file, line: pos.line, col: pos.col } });
  }
  let data: unknown;
  if (diagnostics.length === 0) {
    try {
      data = withoutExtensions(document.toJS({ maxAliasCount: 50 }));
    } catch (e) {
      diagnostics.push(error("yaml.syntax", "", "the YAML cannot be read: " + firstLine((e as Error).message), "remove anchors and aliases; write each value out"));
    }
  }
  const secrets = findSecrets(source, document);
  return { source, display: maskSource(source, secrets), secrets, sourceMap: { file, document, lineCounter }, data, diagnostics };
}

/**
 * Keys that start with `x-` are the user's (as in Compose files): anchors for shared settings,
 * notes. They are dropped before the schema sees the spec, at any depth; nothing else is.
 */
export function withoutExtensions(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutExtensions);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([k]) => !k.startsWith("x-")).map(([k, v]) => [k, withoutExtensions(v)]));
}

/** Paths of values that are secrets: messages say "(hidden: it is a secret)" instead of the value. */
export const SECRET_PATHS = [["storage", "vip", "password"]];

/** Reads `path`; messages name the file as `display` (what the user typed). */
export function loadSpecFile(path: string, display = path): LoadedSpec {
  // The spec may be a link (followed), but a FIFO or a device is not waited on or read without end.
  let text: string | undefined;
  let size = 0;
  try {
    text = readSafely(path, { maxBytes: MAX_SPEC_BYTES, followLinks: true }).toString("utf8");
  } catch (e) {
    if (!(e instanceof UnsafeFileError)) throw e;
    if (!/bytes/.test(e.reason)) return unreadable(display, `the spec is ${e.reason}, not a file`, "name the spec file itself");
    size = statSync(path).size;
  }
  if (text === undefined) {
    const lineCounter = new LineCounter();
    return {
      source: "",
      display: "",
      secrets: { values: [], ranges: [] },
      sourceMap: { file: display, document: undefined, lineCounter },
      data: undefined,
      diagnostics: [
        { ...error("too-large", "", `the spec is ${size} bytes; at most ${MAX_SPEC_BYTES} are read`, "a spec is a few kilobytes: check that this is the right file"), location: { file: display, line: 1, col: 1 } },
      ],
    };
  }
  return loadSpecText(display, text);
}

function unreadable(display: string, message: string, hint: string): LoadedSpec {
  return {
    source: "",
    display: "",
    secrets: { values: [], ranges: [] },
    sourceMap: { file: display, document: undefined, lineCounter: new LineCounter() },
    data: undefined,
    diagnostics: [{ ...error("unreadable", "", message, hint), location: { file: display, line: 1, col: 1 } }],
  };
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

/** For each mapping, its keys that repeat an earlier key of the same mapping (with their offsets). */
function repeatedKeysByMap(document: Document): Map<unknown, { key: string; offset: number }[]> {
  const out = new Map<unknown, { key: string; offset: number }[]>();
  visit(document, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : undefined;
        const offset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
        if (k === undefined || offset === undefined) continue;
        if (seen.has(k)) out.set(map, [...(out.get(map) ?? []), { key: k, offset }]);
        seen.add(k);
      }
    },
  });
  return out;
}
