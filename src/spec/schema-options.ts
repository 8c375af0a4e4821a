// The ajv options and format names, shared by the run-time compile and the build-time one
// (scripts/compile-schema.mjs), so that both validate the same way.
import { formats } from "./formats.js";

export const AJV_OPTIONS = { allErrors: true, strict: true, allowUnionTypes: true } as const;
export const FORMAT_NAMES = Object.keys(formats);
