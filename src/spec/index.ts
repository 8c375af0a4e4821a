// The front of the pipeline: text -> YAML -> schema -> semantic checks -> model, with every finding
// located in the source.
import { hasErrors, type Diagnostic } from "../diag/diagnostic.js";
import { locate } from "../diag/locate.js";
import { sortDiagnostics } from "../diag/format.js";
import { loadSpecFile, loadSpecText, type LoadedSpec } from "./load.js";
import { maskText } from "./secret-mask.js";
import { checkSchema } from "./schema-check.js";
import { checkSemantics } from "./semantic.js";
import { toModel, type Model } from "./model.js";
import type { Spec } from "./types.js";

export interface CheckedSpec {
  loaded: LoadedSpec;
  diagnostics: Diagnostic[];
  model?: Model;
}

export function checkLoaded(loaded: LoadedSpec): CheckedSpec {
  let diagnostics = [...loaded.diagnostics];
  if (!hasErrors(diagnostics)) {
    const schemaErrors = checkSchema(loaded.data);
    diagnostics.push(...schemaErrors);
    // The schema checks the top-level shape first: semantic checks need at least a mapping.
    // A misspelt key's error also stands for the missing key it suggests (the "missing" error is
    // folded into it): both places failed the schema, and no semantic check may read either.
    const failed = schemaErrors.flatMap((d) => (d.suggestion ? [d.pointer, d.suggestion] : [d.pointer]));
    if (isObject(loaded.data)) diagnostics.push(...checkSemantics(loaded.data as unknown as Spec, failed));
  }
  diagnostics = sortDiagnostics(locate(loaded.sourceMap, diagnostics)).map((d) => ({
    ...d,
    message: maskText(d.message, loaded.secrets),
    ...(d.hint === undefined ? {} : { hint: maskText(d.hint, loaded.secrets) }),
  }));
  const model = hasErrors(diagnostics) ? undefined : toModel(loaded.data as Spec);
  return { loaded, diagnostics, model };
}

export function checkSpecFile(path: string, display = path): CheckedSpec {
  return checkLoaded(loadSpecFile(path, display));
}

export function checkSpecText(file: string, text: string): CheckedSpec {
  return checkLoaded(loadSpecText(file, text));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
