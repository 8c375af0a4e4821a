// Checks the parsed spec against the JSON Schema (the one definition of its shape) and turns ajv's
// errors into located diagnostics that say what is wrong, with which value, and what to do.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { ErrorObject, ValidateFunction } from "ajv";
import { error, pointerOf, pointerTokens, showValue, type Diagnostic } from "../diag/diagnostic.js";
import { schemaPath } from "../paths.js";
import { precompiledValidator } from "../precompiled.js";
import { formatHints, formats } from "./formats.js";
import { closest } from "./suggest.js";
import { AJV_OPTIONS } from "./schema-options.js";
import { SECRET_PATHS } from "./load.js";

const require = createRequire(import.meta.url);

type Schema = Record<string, any>;

/** Values at these pointers are secrets (load.ts SECRET_PATHS): messages never repeat them. */
const SECRET_POINTERS = new Set(SECRET_PATHS.map((path) => pointerOf(path)));

export function isSecretPointer(pointer: string): boolean {
  return SECRET_POINTERS.has(pointer);
}

let cached: { schema: Schema; validate: ValidateFunction; precompiled: boolean } | undefined;

const formatDefinitions = Object.fromEntries(Object.entries(formats).map(([name, validate]) => [name, { type: "string", validate }]));

/** The validator compiled at build time (dist/spec/schema-validator.cjs), if it is for this schema. */
function precompiled(schemaText: string): ValidateFunction | undefined {
  const mod = precompiledValidator();
  if (!mod) return undefined;
  const sha = createHash("sha256").update(schemaText).digest("hex");
  return mod.schemaSha256 === sha ? mod.make(formatDefinitions) : undefined;
}

function compileNow(schema: Schema): ValidateFunction {
  const Ajv = (require("ajv") as { default: new (o: object) => { addFormat(n: string, f: object): void; compile(s: Schema): ValidateFunction } }).default;
  const ajv = new Ajv(AJV_OPTIONS);
  for (const [name, definition] of Object.entries(formatDefinitions)) ajv.addFormat(name, definition);
  return ajv.compile(schema);
}

export function loadSchema(): { schema: Schema; validate: ValidateFunction; precompiled: boolean } {
  if (!cached) {
    const text = readFileSync(schemaPath, "utf8");
    const schema = JSON.parse(text) as Schema;
    const fast = precompiled(text);
    cached = { schema, validate: fast ?? compileNow(schema), precompiled: fast !== undefined };
  }
  return cached;
}

/** The schema node that describes the value at `pointer`, following $ref, properties and items. */
export function schemaAt(root: Schema, pointer: string): Schema | undefined {
  let node: Schema | undefined = deref(root, root);
  for (const token of pointerTokens(pointer)) {
    if (!node) return undefined;
    if (node.properties && token in node.properties) node = deref(root, node.properties[token]);
    else if (node.items && /^\d+$/.test(token)) node = deref(root, node.items);
    else return undefined;
  }
  return node;
}

function deref(root: Schema, node: Schema | undefined): Schema | undefined {
  if (!node?.$ref) return node;
  const target = pointerTokens(node.$ref.replace(/^#/, "")).reduce<any>((n, t) => n?.[t], root);
  // The referring node's description says what the field is for; the definition's says what form
  // a value must have. Messages about the form want the second.
  return { ...target, ...node, $ref: undefined, description: node.description ?? target?.description, rule: target?.description };
}

/** The description of the nearest ancestor that has one (list items often have none of their own). */
function describedParent(root: Schema, pointer: string): string | undefined {
  const tokens = pointerTokens(pointer);
  for (let n = tokens.length - 1; n >= 0; n--) {
    const d = schemaAt(root, pointerOf(tokens.slice(0, n)))?.description;
    if (d) return d;
  }
  return undefined;
}

function valueAt(data: unknown, pointer: string): unknown {
  return pointerTokens(pointer).reduce<any>((v, t) => (v === null || v === undefined ? undefined : v[t]), data);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a number";
  return `a ${typeof v}`;
}

const article: Record<string, string> = {
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "true or false",
  object: "a mapping",
  array: "a list",
};

export function checkSchema(data: unknown): Diagnostic[] {
  const { schema, validate } = loadSchema();
  if (validate(data)) return [];
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of validate.errors ?? []) {
    const d = toDiagnostic(schema, data, e);
    if (!d) continue;
    const key = `${d.pointer}\u0000${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return foldMisspelledRequired(out);
}

/** "unknown key vhdi; did you mean vhid?" already says what "missing required key vhid" would. */
function foldMisspelledRequired(list: Diagnostic[]): Diagnostic[] {
  const suggested = new Set(list.filter((d) => d.code === "schema.unknown-key" && d.suggestion).map((d) => d.suggestion!));
  return list.filter((d) => !(d.code === "schema.required" && suggested.has(d.pointer)));
}

function toDiagnostic(schema: Schema, data: unknown, e: ErrorObject): Diagnostic | undefined {
  const pointer = e.instancePath;
  const value = valueAt(data, pointer);
  const shown = isSecretPointer(pointer) ? "(hidden: it is a secret)" : showValue(value);
  const field = schemaAt(schema, pointer);
  const about = field?.description ?? describedParent(schema, pointer);
  const form = field?.rule && field.rule !== about ? `${field.rule} (${about})` : about;
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(e.params.additionalProperty);
      const allowed = Object.keys(schemaAt(schema, pointer)?.properties ?? {});
      const guess = closest(key, allowed);
      const keyPointer = pointer + pointerOf([key]);
      return {
        ...error(
          "schema.unknown-key",
          keyPointer,
          `unknown key ${JSON.stringify(key)}` + (guess ? `; did you mean ${JSON.stringify(guess)}?` : ""),
          guess ? `rename it to ${JSON.stringify(guess)}` : `remove it; allowed here: ${allowed.join(", ")}`,
        ),
        atKey: true,
        suggestion: guess ? pointer + pointerOf([guess]) : undefined,
      };
    }
    case "required": {
      const key = String(e.params.missingProperty);
      const child = schemaAt(schema, pointer + pointerOf([key]));
      return error(
        "schema.required",
        pointer + pointerOf([key]),
        `missing required key ${JSON.stringify(key)}`,
        `add ${JSON.stringify(key)}` + (child?.description ? `: ${child.description}` : ""),
      );
    }
    case "type": {
      const want = String(e.params.type)
        .split(",")
        .map((t) => article[t] ?? t)
        .join(" or ");
      if (value === null) return error("schema.type", pointer, `must be ${want}, but is empty`, about ? `fill it in: ${about}` : undefined);
      return error("schema.type", pointer, `must be ${want}, got ${typeName(value)} ${shown}`, form);
    }
    case "const":
      return error("schema.const", pointer, `must be ${JSON.stringify(e.params.allowedValue)}, got ${shown}`, about);
    case "enum":
      return error(
        "schema.enum",
        pointer,
        `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}; got ${shown}`,
        about,
      );
    case "format": {
      const f = String(e.params.format) as keyof typeof formatHints;
      return error("schema.format", pointer, `${shown} is not a valid ${f}`, formatHints[f] ?? about);
    }
    case "pattern":
      return error("schema.pattern", pointer, `${shown} does not have the form this field takes`, form);
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return error("schema.range", pointer, `${shown} is out of range: ${e.message}`, about);
    case "minItems":
    case "maxItems":
      return error("schema.items", pointer, `has ${Array.isArray(value) ? value.length : 0} entries; ${e.message}`, about);
    case "uniqueItems":
      return error("schema.unique", pointer, `has a repeated entry (${e.message?.replace("must NOT have duplicate items ", "")})`, "list each value once");
    case "maxLength":
    case "minLength":
      return error("schema.length", pointer, `${shown} ${e.message}`, about);
    default:
      return error(`schema.${e.keyword}`, pointer, `${shown}: ${e.message ?? "is invalid"}`, about);
  }
}
