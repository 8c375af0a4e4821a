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
  const cacheable = typeof value === "object" && value !== null;
  const cached = cacheable ? shown.get(value) : undefined;
  if (cached !== undefined) return cached;
  const text = boundedJson(value, 61);
  const result = text.length > 60 ? text.slice(0, 57) + "..." : text;
  if (cacheable) shown.set(value, result);
  return result;
}

/** Thousands of errors in one mapping show the same mapping: each is read once. */
const shown = new WeakMap<object, string>();

/**
 * JSON text of `value`, but only its first `limit` characters' worth: a message shows 60 of them,
 * and serialising a whole document for each of thousands of errors made validation quadratic.
 */
function boundedJson(value: unknown, limit: number): string {
  let out = "";
  const put = (s: string) => {
    out += s;
    return out.length < limit;
  };
  const walk = (v: unknown): boolean => {
    if (v === null || typeof v !== "object") return put(typeof v === "string" ? JSON.stringify(v.length > limit ? v.slice(0, limit) + "\u2026" : v) : (JSON.stringify(v) ?? String(v)));
    if (!put(Array.isArray(v) ? "[" : "{")) return false;
    // Lazily: a mapping with thousands of keys is left after the first few.
    let first = true;
    if (Array.isArray(v)) {
      for (const x of v) {
        if ((!first && !put(",")) || !walk(x)) return false;
        first = false;
      }
    } else {
      for (const k in v) {
        if ((!first && !put(",")) || !put(JSON.stringify(k) + ":") || !walk((v as Record<string, unknown>)[k])) return false;
        first = false;
      }
    }
    return put(Array.isArray(v) ? "]" : "}");
  };
  walk(value);
  return out;
}
