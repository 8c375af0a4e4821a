// `f3s-gen init`: a spec for the user's own cluster, made from the bundled example: a header for
// users instead of the team's notes, a schema line for editors, the reserved home-network domain
// (RFC 8375) instead of the blog's, and a random CARP password instead of the tutorial's, kept in a
// file beside the spec (passwordFile) so that the spec holds no secret and can be committed.
import { randomInt } from "node:crypto";

/** Letters and digits only: a CARP password network.subr and the schema take as they are. */
const PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

export function randomCarpPassword(length = 16): string {
  return Array.from({ length }, () => PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)]).join("");
}

/** The password file `init` writes beside `<name>.yaml`: `<name>.carp-password`. */
export const passwordFileFor = (specFile: string) => `${specFile.replace(/\.ya?ml$/i, "")}.carp-password`;

/** What `init` puts in the .gitignore beside the spec: what must never be committed. */
export const GITIGNORE_LINES = ["secrets/", "out/", "*.carp-password"];

/** The lines of `GITIGNORE_LINES` an existing .gitignore lacks, as text to append (empty if none). */
export function gitignoreAddition(existing: string): string {
  const have = new Set(existing.split("\n").map((l) => l.trim()));
  const missing = GITIGNORE_LINES.filter((l) => !have.has(l));
  if (!missing.length) return "";
  return `${existing && !existing.endsWith("\n") ? "\n" : ""}# f3s-gen: private keys, built tarballs (they hold keys), the CARP password\n${missing.join("\n")}\n`;
}

export function initialSpec(example: string, schemaPath: string, passwordFile: string): string {
  const body = example.split("\n");
  const first = body.findIndex((l) => !l.startsWith("#"));
  const header = [
    `# yaml-language-server: $schema=${schemaPath}`,
    "# An f3s-gen cluster spec, written by `f3s-gen init`. Replace the example cluster's names and",
    "# addresses with yours; every key is described in the schema above and in f3s-gen's",
    "# docs/spec-reference.md. Then:",
    "#   f3s-gen validate <this file>   every mistake with its line, column and what to do",
    "#   f3s-gen build <this file>      one tarball per host in out/, the secrets in secrets/",
    `# The CARP password was generated into ${passwordFile} (0600, listed in .gitignore): this file`,
    "# holds no secret and can be committed.",
  ];
  const text = [...header, ...body.slice(first)].join("\n");
  return text
    .replace(/^domain: \S+/m, "domain: home.arpa")
    .replace(/^(\s+)password: \S+ *(#.*)?$/m, (_l, indent: string) => `${indent}passwordFile: ${passwordFile}   # the CARP password, in a file beside this spec (or passwordEnv: VARIABLE)`)
    // ECDSA P-256: keys in microseconds instead of seconds, cheaper handshakes, supported by the
    // stunnel/OpenSSL of every FreeBSD and Linux release f3s-gen targets.
    .replace(/^( +)keyBits: .*$/m, (_line, indent: string) => `${indent}keyType: ecdsa-p256               # rsa (with keyBits 2048|3072|4096) | ecdsa-p256 | ecdsa-p384`)
    // A new cluster has no data in its exports yet: each can start as a dataset of its own, so a
    // client certificate reaches exactly its exports (turning it on later is a data migration).
    .replace(
      /^( +)tlsPort: .*$/m,
      (line, indent: string) =>
        `${line}\n${indent}rootAccess: root               # root on a client is root on the export (Kubernetes); squash: nobody` +
        `\n${indent}exportDatasets: true           # each export a ZFS dataset of its own: a certificate reaches only its exports`,
    );
}
