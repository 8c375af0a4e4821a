// The build's own products that a run loads instead of doing the work again: the schema validator
// compiled by scripts/compile-schema.mjs, the templates precompiled by scripts/compile-templates.mjs,
// and Handlebars' runtime that runs them. Found here beside the modules in dist/; the single-file
// bundle (scripts/bundle.mjs) replaces this module with one that carries all three inside it, so
// that they load with the bundle and its code cache instead of as ~20 files of their own.
// Each product says which sources it was made from; the callers use it only if those still match.
import { createRequire } from "node:module";
import { join } from "node:path";
import type { ValidateFunction } from "ajv";
import { packageRoot } from "./paths.js";

const require = createRequire(import.meta.url);

export interface PrecompiledValidator {
  schemaSha256: string;
  make(formats: object): ValidateFunction;
}

export interface PrecompiledTemplates {
  hash: string;
  partials: Record<string, TemplateSpecification>;
  templates: Record<string, TemplateSpecification>;
}

const optional = <T>(path: string): T | undefined => {
  try {
    return require(join(packageRoot, path)) as T;
  } catch {
    return undefined; // not built (tests run src/)
  }
};

export const precompiledValidator = () => optional<PrecompiledValidator>("dist/spec/schema-validator.cjs");
export const precompiledTemplates = () => optional<PrecompiledTemplates>("dist/render/templates.cjs");
export const handlebarsRuntime = (): typeof import("handlebars") => require("handlebars/runtime");
