// Writes docs/spec-reference.md from schema/f3s.schema.json: every key with its type, default,
// allowed values, examples and description, so that the reference cannot say anything the schema
// does not. `node scripts/spec-reference.mjs --check` exits 1 when the file is stale (the tests run it).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const schema = JSON.parse(readFileSync(join(root, "schema/f3s.schema.json"), "utf8"));
const target = join(root, "docs/spec-reference.md");

const resolve = (node) => {
  let n = node;
  while (n && n.$ref) n = { ...schema.definitions[n.$ref.replace("#/definitions/", "")], ...(n.description ? { description: n.description } : {}), ...(n.default !== undefined ? { default: n.default } : {}) };
  return n ?? {};
};

const typeOf = (n) => {
  if (n.const !== undefined) return `\`${JSON.stringify(n.const)}\``;
  if (n.enum) return n.enum.map((v) => `\`${JSON.stringify(v)}\``).join(" \\| ");
  if (n.type === "array") return `list of ${typeOf(resolve(n.items)).replace(/^list of /, "list of ")}`;
  if (n.oneOf || n.anyOf) return (n.oneOf ?? n.anyOf).map((x) => typeOf(resolve(x))).join(" or ");
  return n.type ?? "any";
};

// Markdown table cells: pipes escaped, one line, and <name> shown rather than taken for HTML.
const cell = (s) => String(s).replace(/\|/g, "\\|").replace(/\n/g, " ").replace(/</g, "&lt;");

function rows(node, path, required, out) {
  const n = resolve(node);
  const props = n.properties ?? (n.type === "array" ? resolve(n.items).properties : undefined);
  const req = new Set(n.required ?? (n.type === "array" ? resolve(n.items).required : undefined) ?? []);
  if (path) {
    const extra = [];
    if (n.default !== undefined) extra.push(`default \`${JSON.stringify(n.default)}\``);
    if (n.minimum !== undefined || n.maximum !== undefined) extra.push(`range ${n.minimum ?? ""}..${n.maximum ?? ""}`);
    if (n.pattern) extra.push(`pattern \`${n.pattern}\``);
    if (n.examples) extra.push(`e.g. ${n.examples.map((e) => `\`${JSON.stringify(e)}\``).join(", ")}`);
    out.push(`| \`${path}\` | ${cell(typeOf(n))} | ${required ? "yes" : ""} | ${cell(n.description ?? "")}${extra.length ? ` (${cell(extra.join("; "))})` : ""} |`);
  }
  if (!props) return;
  const prefix = path ? (n.type === "array" ? `${path}[].` : `${path}.`) : "";
  for (const [key, child] of Object.entries(props)) rows(child, `${prefix}${key}`, req.has(key), out);
}

export function specReference() {
  const sections = [];
  for (const [key, child] of Object.entries(schema.properties)) {
    const out = [];
    rows(child, key, (schema.required ?? []).includes(key), out);
    sections.push(`## \`${key}\`\n\n| key | type | required | meaning |\n|---|---|---|---|\n${out.join("\n")}\n`);
  }
  return [
    "# Spec reference",
    "",
    "Generated from `schema/f3s.schema.json` by `npm run docs` (the tests fail when this file is stale):",
    "every key of the spec with its type, whether it is required, its default, the values it takes and",
    "what it means. How to write a spec, with examples: [the spec](spec.md). Keys that start with `x-`",
    "are yours at any depth, and YAML merge keys (`<<: *anchor`) share settings.",
    "",
    ...sections,
  ].join("\n");
}

if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {
    current = "";
  }
  if (current !== specReference()) {
    process.stderr.write("docs/spec-reference.md is stale: run npm run docs\n");
    process.exit(1);
  }
} else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(target, specReference());
}
