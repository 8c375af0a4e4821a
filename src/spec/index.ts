// The front of the pipeline: text -> YAML -> schema -> semantic checks -> model, with every finding
// located in the source.
import { hasErrors, type Diagnostic } from "../diag/diagnostic.js";
import { locate } from "../diag/locate.js";
import { sortDiagnostics } from "../diag/format.js";
import { loadSpecFile, loadSpecText, type LoadedSpec } from "./load.js";
import { maskText } from "./secret-mask.js";
import { checkSchema } from "./schema-check.js";
import { checkSemantics } from "./semantic.js";
import { pointAtSource, resolvePassword, type PasswordContext } from "./password-source.js";
import { toModel, type Model } from "./model.js";
import { readOverrides, type Override } from "./overrides.js";
import type { Spec } from "./types.js";

export interface CheckedSpec {
  loaded: LoadedSpec;
  diagnostics: Diagnostic[];
  model?: Model;
}

export function checkLoaded(loaded: LoadedSpec, ctx: PasswordContext = { env: process.env }): CheckedSpec {
  let diagnostics = [...loaded.diagnostics];
  let source: ReturnType<typeof resolvePassword>["source"];
  if (!hasErrors(diagnostics)) {
    // The CARP password from a file or the environment, in place before any check reads it.
    const password = resolvePassword(loaded.data, ctx);
    diagnostics.push(...password.diagnostics);
    source = password.source;
    if (password.value) loaded.secrets.values = [...new Set([...loaded.secrets.values, password.value])].filter((v) => v.trim() !== "").sort((a, b) => b.length - a.length);
    const schemaErrors = checkSchema(loaded.data);
    diagnostics.push(...schemaErrors);
    // The schema checks the top-level shape first: semantic checks need at least a mapping.
    // A misspelt key's error also stands for the missing key it suggests (the "missing" error is
    // folded into it): both places failed the schema, and no semantic check may read either.
    const failed = schemaErrors.flatMap((d) => (d.suggestion ? [d.pointer, d.suggestion] : [d.pointer]));
    // `pasword:` is one mistake: its "did you mean" stands for the missing password too.
    if (schemaErrors.some((d) => d.suggestion?.startsWith("/storage/vip/password"))) diagnostics = diagnostics.filter((d) => d.code !== "password-missing");
    if (isObject(loaded.data)) diagnostics.push(...checkSemantics(loaded.data as unknown as Spec, failed));
  }
  if (source) diagnostics = diagnostics.map((d) => pointAtSource(d, source));
  diagnostics = sortDiagnostics(locate(loaded.sourceMap, diagnostics)).map((d) => ({
    ...d,
    message: maskText(d.message, loaded.secrets),
    ...(d.hint === undefined ? {} : { hint: maskText(d.hint, loaded.secrets) }),
  }));
  // Overrides read their sources beside the spec: only once the spec itself is sound.
  let overrides: Override[] = [];
  if (!hasErrors(diagnostics) && isObject(loaded.data)) {
    const found: Diagnostic[] = [];
    overrides = readOverrides(loaded.data as unknown as Spec, ctx.specPath, found);
    diagnostics = [...diagnostics, ...sortDiagnostics(locate(loaded.sourceMap, found))];
  }
  const model = hasErrors(diagnostics) ? undefined : toModel(loaded.data as Spec, overrides);
  return { loaded, diagnostics, model };
}

/** `env` holds the variable a passwordEnv names (the CLI passes its environment). */
export function checkSpecFile(path: string, display = path, env: PasswordContext["env"] = process.env): CheckedSpec {
  return checkLoaded(loadSpecFile(path, display), { specPath: path, env });
}

export function checkSpecText(file: string, text: string): CheckedSpec {
  return checkLoaded(loadSpecText(file, text));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
