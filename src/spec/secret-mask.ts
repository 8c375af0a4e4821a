// The spec's one secret, the CARP password, is masked by its value, not only at the place the
// schema gives it: a misspelt key (`pasword:`), a duplicate key, a wrong level or a tab that breaks
// the parse all put it where no pointer leads, and a message about a parent value (`got a list
// [{"password": ...`) carries it along. So every value under a key that looks like a password is
// a secret wherever it is written, and every other occurrence of such a value is masked too: in
// source excerpts (same length, so columns stay right) and in messages and hints.
import { isCollection, isPair, isScalar, visit, type Document } from "yaml";
import { editDistance } from "./suggest.js";

/** A key that names a password, or something close enough to be one misspelt. */
export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase();
  // passwordFile, passwordEnv: where the secret is, not the secret (a path or a variable's name).
  if (/(file|env)$/.test(k)) return false;
  if (/pass|pwd|secret/.test(k)) return true;
  // Within two edits of "password" means 6 to 10 characters: most keys are decided without the
  // edit distance (a spec has hundreds of keys, and this runs on every build).
  return k.length >= 6 && k.length <= 10 && editDistance(k, "password") <= 2;
}

// `key: value` anywhere in the text, block or flow style, the key optionally quoted; the value a
// quoted string or a run up to a comment, comma, bracket or the end of the line.
const KEY_VALUE = /(?<![\w-])["']?([A-Za-z_][\w-]*)["']?[ \t]*:[ \t]+('(?:[^'\n]|'')*'|"(?:[^"\\\n]|\\.)*"|[^\s#,{}[\]][^\n#,{}[\]]*?)(?=[ \t]*(?:#|,|\}|\]|$))/gm;

export interface SpecSecrets {
  /** Every secret value as written (unquoted), longest first. */
  values: string[];
  /** Source ranges [start, end) that hold a secret. */
  ranges: [number, number][];
}

/** The secret values of `source`: found in its text (even when it does not parse) and in its document. */
export function findSecrets(source: string, document?: Document): SpecSecrets {
  const values = new Set<string>();
  const ranges: [number, number][] = [];
  for (const m of source.matchAll(KEY_VALUE)) {
    if (!isSecretKey(m[1]!)) continue;
    const raw = m[2]!;
    const start = m.index! + m[0].length - raw.length;
    ranges.push([start, start + raw.length]);
    values.add(unquote(raw));
  }
  if (document) {
    visit(document, {
      Pair(_key, pair) {
        if (!isPair(pair) || !isScalar(pair.key) || !isSecretKey(String(pair.key.value))) return;
        const value = pair.value;
        if (isScalar(value) || isCollection(value)) {
          const range = (value as { range?: [number, number, number] }).range;
          if (range) ranges.push([range[0], range[1]]);
        }
        if (isScalar(value)) values.add(String(value.value));
        else if (isCollection(value)) visit(value, { Scalar: (_k, s) => void values.add(String(s.value)) });
      },
    });
  }
  return { values: [...values].filter((v) => v.trim() !== "").sort((a, b) => b.length - a.length), ranges };
}

function unquote(raw: string): string {
  if (raw.startsWith("'")) return raw.slice(1, -1).replace(/''/g, "'");
  if (raw.startsWith('"')) {
    try {
      return JSON.parse(raw) as string;
    } catch {
      return raw.slice(1, -1);
    }
  }
  return raw.trimEnd();
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Occurrences of `value` that are not part of a longer word (a password "ab" leaves "tab" alone). */
const occurrences = (value: string) => new RegExp(`(?<![A-Za-z0-9])${escapeRegExp(value)}(?![A-Za-z0-9])`, "g");

/** `source` with every secret range and every other occurrence of a secret value overwritten by '*'. */
export function maskSource(source: string, secrets: SpecSecrets): string {
  // Offsets from the parser and from matchAll count UTF-16 code units: so does this array.
  const units = source.split("");
  const star = (start: number, end: number) => {
    for (let i = start; i < end && i < units.length; i++) if (units[i] !== "\n") units[i] = "*";
  };
  for (const [start, end] of secrets.ranges) star(start, end);
  for (const value of secrets.values) for (const m of source.matchAll(occurrences(value))) star(m.index!, m.index! + value.length);
  return units.join("");
}

// The schema refuses these as passwords by name (network.subr splits an alias at them), and its own
// hint lists them: a spec that uses one has no secret there, and masking it would garble the hint.
const REFUSED_WORDS = new Set(["inet", "inet6", "link", "ether"]);

/** `text` (a message or hint) with every secret value replaced by ********. */
export function maskText(text: string, secrets: SpecSecrets): string {
  let out = text;
  for (const value of secrets.values) {
    if (REFUSED_WORDS.has(value)) continue;
    out = out.replace(occurrences(value), "********");
    // A value shown as JSON (in a message about its parent) has its quotes and backslashes escaped.
    const json = JSON.stringify(value).slice(1, -1);
    if (json !== value) out = out.replace(occurrences(json), "********");
  }
  return out;
}
