// A diagnostic is a user-facing finding about the input. User errors are data, never exceptions:
// every stage returns the diagnostics it found and the CLI decides how to show them.

export type Severity = "error" | "warning";

export interface SourceLocation {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
}

export interface Diagnostic {
  severity: Severity;
  /** Stable, machine-readable identifier, e.g. "schema.type" or "vip-outside-subnet". */
  code: string;
  /** JSON pointer into the spec ("" for the whole document). */
  pointer: string;
  message: string;
  /** What the user should do about it. */
  hint?: string;
  /** Filled in once, at the edge, from the YAML document. */
  location?: SourceLocation;
  /** Point at the key of `pointer` rather than at its value (unknown keys, duplicates). */
  atKey?: boolean;
  /** For unknown keys: the pointer of the key that was probably meant. */
  suggestion?: string;
}

export function error(code: string, pointer: string, message: string, hint?: string): Diagnostic {
  return { severity: "error", code, pointer, message, hint };
}

export function warning(code: string, pointer: string, message: string, hint?: string): Diagnostic {
  return { severity: "warning", code, pointer, message, hint };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}

/** RFC 6901: "/" separates tokens, "~" and "/" inside a token are escaped. */
export function pointerOf(path: readonly (string | number)[]): string {
  return path.map((p) => "/" + String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

export function pointerTokens(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** A value quoted for a message; long or multi-line values are shortened so one line stays one line. */
export function showValue(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}
