// Renders diagnostics for people (file:line:col, a source excerpt with a caret, the hint) and for
// machines (--json). Nothing here prints; the CLI does.
import type { Diagnostic } from "./diagnostic.js";
import { compareStrings } from "../order.js";

export interface Style {
  color: boolean;
}

const paint = (on: boolean, code: string, text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);

/** The spec's text (secrets masked) and the name its diagnostics carry: only those are excerpted. */
export interface SpecSource {
  file: string;
  text: string;
}

export function formatDiagnostic(d: Diagnostic, source: SpecSource | undefined, style: Style): string {
  const where = d.location ? `${d.location.file}:${d.location.line}:${d.location.col}` : "f3s-gen";
  const label = d.severity === "error" ? paint(style.color, "1;31", "error") : paint(style.color, "1;33", "warning");
  const lines = [d.location ? `${where}: ${label}: ${d.pointer || "/"}: ${d.message}` : `${where}: ${label}: ${d.message}`];
  // A finding in a secrets file or in out/ is located there: no line of the spec is quoted for it.
  const excerpt = source !== undefined && d.location?.file === source.file ? excerptAt(source.text, d.location.line, d.location.col) : undefined;
  if (excerpt) lines.push(...excerpt.map((l) => paint(style.color, "2", l)));
  if (d.hint) lines.push(`  hint: ${d.hint}`);
  return lines.join("\n");
}

/** The source's lines, split once per source (thousands of diagnostics share one). */
let split: { source: string; lines: string[] } | undefined;
function sourceLines(source: string): string[] {
  if (split?.source !== source) split = { source, lines: source.split(/\r?\n/) };
  return split.lines;
}

function excerptAt(source: string, line: number, col: number): string[] | undefined {
  const text = sourceLines(source)[line - 1];
  if (text === undefined || text.trim() === "" || text.length > 200) return undefined;
  const gutter = String(line).padStart(5);
  // Control characters from the spec (an escape sequence could rewrite the terminal) show as "?",
  // one for one, so the caret stays under its column.
  return [`${gutter} | ${text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "?")}`, `${" ".repeat(gutter.length)} | ${" ".repeat(Math.max(0, col - 1))}^`];
}

export function formatDiagnostics(list: readonly Diagnostic[], source: SpecSource | undefined, style: Style): string {
  return list.map((d) => formatDiagnostic(d, source, style)).join("\n");
}

/** The documented --json shape of one diagnostic. */
export function diagnosticToJson(d: Diagnostic) {
  return {
    severity: d.severity,
    code: d.code,
    file: d.location?.file ?? null,
    line: d.location?.line ?? null,
    column: d.location?.col ?? null,
    pointer: d.pointer,
    message: d.message,
    hint: d.hint ?? null,
  };
}

export function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) =>
      (a.location?.line ?? 0) - (b.location?.line ?? 0) ||
      (a.location?.col ?? 0) - (b.location?.col ?? 0) ||
      compareStrings(a.pointer, b.pointer) ||
      compareStrings(a.code, b.code),
  );
}
