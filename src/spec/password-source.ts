// Where the CARP password comes from: written in the spec (`password`), read from a file beside it
// (`passwordFile`, relative to the spec's directory, private to the user) or from the environment
// (`passwordEnv`, a variable's name). With either of the last two the spec holds no secret and can
// be committed. The value is put where `password` would be before the schema sees the spec, so
// every check applies to it as written inline; a finding about it is reported at the key that
// names its source, and the value is masked in every message like an inline one.
import { error, type Diagnostic } from "../diag/diagnostic.js";
import { readBesideSpec } from "./beside-spec.js";

export const PASSWORD_KEYS = ["password", "passwordFile", "passwordEnv"] as const;
type Source = "passwordFile" | "passwordEnv";

export interface PasswordContext {
  /** The spec file's path (a relative passwordFile is beside it); absent for a spec given as text. */
  specPath?: string;
  env: Readonly<Record<string, string | undefined>>;
}

export interface ResolvedPassword {
  diagnostics: Diagnostic[];
  /** The key the password came from, when not `password`. */
  source?: Source;
  /** The value read, to mask in messages. */
  value?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const POINTER = "/storage/vip";

/** Reads the password's file or variable into `data.storage.vip.password` (data is the parsed spec, changed in place). */
export function resolvePassword(data: unknown, ctx: PasswordContext): ResolvedPassword {
  const vip = isObject(data) && isObject(data.storage) && isObject(data.storage.vip) ? data.storage.vip : undefined;
  if (!vip) return { diagnostics: [] }; // the schema reports the missing parts
  const given = PASSWORD_KEYS.filter((k) => k in vip);
  if (given.length > 1) {
    return { diagnostics: [error("password-sources", `${POINTER}/${given[1]}`, `the CARP password is given ${given.length} ways (${given.join(", ")})`, "keep one: passwordFile or passwordEnv keeps the secret out of the spec")] };
  }
  if (given.length === 0) {
    return { diagnostics: [error("password-missing", POINTER, "the CARP password is missing", "write passwordFile: carp-password (a file beside the spec: (umask 077; openssl rand -base64 12 > carp-password)), passwordEnv: VARIABLE, or password: <value>")] };
  }
  const key = given[0]!;
  if (key === "password") return { diagnostics: [] };
  const ref = vip[key];
  const at = `${POINTER}/${key}`;
  if (typeof ref !== "string" || ref === "") return { diagnostics: [] }; // the schema says what it must be
  const fail = (message: string, hint: string): ResolvedPassword => ({ diagnostics: [error("password-source", at, message, hint)] });
  let value: string;
  if (key === "passwordEnv") {
    const v = ctx.env[ref];
    if (v === undefined) return fail(`the environment variable ${ref} is not set`, `export ${ref}=<the CARP password> before running f3s-gen, or use passwordFile`);
    value = v;
  } else {
    const read = readBesideSpec(ref, {
      specPath: ctx.specPath,
      maxBytes: 1024,
      check: (st) => (st.mode & 0o077 ? `readable by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")})` : undefined),
    });
    if (!read.ok) {
      const hint = read.hint ?? (!read.file ? "give an absolute path" : read.problem.endsWith("does not exist") ? `write it: (umask 077; openssl rand -base64 12 > ${read.file})` : read.problem.includes("readable by other users") ? `run: chmod 600 ${read.file}` : "point passwordFile at a small regular file holding the password");
      return fail(`the password file ${read.problem}`, hint);
    }
    value = read.bytes.toString("utf8").replace(/\r?\n$/, "");
  }
  delete vip[key];
  vip.password = value;
  return { diagnostics: [], source: key, value };
}

/** A finding about the password, moved to the key that names where it came from. */
export function pointAtSource(d: Diagnostic, source: Source): Diagnostic {
  if (d.pointer !== `${POINTER}/password` && !d.pointer.startsWith(`${POINTER}/password/`)) return d;
  const from = source === "passwordFile" ? "from passwordFile" : "from passwordEnv";
  return { ...d, pointer: `${POINTER}/${source}`, message: `${d.message} (the password ${from})` };
}
