// Reads the spec and parses it as YAML, keeping the document so that every later diagnostic can be
// traced back to a line and column.
import { readFileSync, statSync } from "node:fs";
import { LineCounter, parseDocument, type Document } from "yaml";
import { error, type Diagnostic } from "../diag/diagnostic.js";
import type { SourceMap } from "../diag/locate.js";

/** A real spec is a few kilobytes; anything this large is a mistake (or an attack on the parser). */
export const MAX_SPEC_BYTES = 1024 * 1024;

export interface LoadedSpec {
  source: string;
  sourceMap: SourceMap;
  data: unknown;
  diagnostics: Diagnostic[];
}

export function loadSpecText(file: string, source: string): LoadedSpec {
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  if (source.trim() === "" || /^(\s*#.*\n?)*\s*$/.test(source)) {
    diagnostics.push(error("empty", "", "the spec is empty", "start from the example: `f3s-gen init spec.yaml`"));
    return { source, sourceMap: { file, document: undefined, lineCounter }, data: undefined, diagnostics };
  }
  const document: Document = parseDocument(source, { lineCounter, uniqueKeys: true, prettyErrors: false });
  for (const e of document.errors) {
    const duplicate = e.code === "DUPLICATE_KEY";
    const pos = lineCounter.linePos(e.pos[0]);
    diagnostics.push({
      ...error(
        duplicate ? "yaml.duplicate-key" : "yaml.syntax",
        "",
        duplicate ? "duplicate key: " + firstLine(e.message) : "YAML syntax error: " + firstLine(e.message),
        duplicate ? "each key may appear once per mapping; remove or merge the repeated one" : "fix the YAML syntax at this position (indentation, quotes, colons)",
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
      data = document.toJS({ maxAliasCount: 50 });
    } catch (e) {
      diagnostics.push(error("yaml.syntax", "", "the YAML cannot be read: " + firstLine((e as Error).message), "remove anchors and aliases; write each value out"));
    }
  }
  return { source, sourceMap: { file, document, lineCounter }, data, diagnostics };
}

export function loadSpecFile(path: string): LoadedSpec {
  const size = statSync(path).size;
  if (size > MAX_SPEC_BYTES) {
    const lineCounter = new LineCounter();
    return {
      source: "",
      sourceMap: { file: path, document: undefined, lineCounter },
      data: undefined,
      diagnostics: [
        { ...error("too-large", "", `the spec is ${size} bytes; at most ${MAX_SPEC_BYTES} are read`, "a spec is a few kilobytes: check that this is the right file"), location: { file: path, line: 1, col: 1 } },
      ],
    };
  }
  return loadSpecText(path, readFileSync(path, "utf8"));
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}
