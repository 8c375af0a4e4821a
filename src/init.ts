// `f3s-gen init`: a spec for the user's own cluster, made from the bundled example: a header for
// users instead of the team's notes, a schema line for editors, the reserved home-network domain
// (RFC 8375) instead of the blog's, and a random CARP password instead of the tutorial's.
import { randomInt } from "node:crypto";

/** Letters and digits only: a CARP password network.subr and the schema take as they are. */
const PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

export function randomCarpPassword(length = 16): string {
  return Array.from({ length }, () => PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)]).join("");
}

export function initialSpec(example: string, schemaPath: string, password = randomCarpPassword()): string {
  const body = example.split("\n");
  const first = body.findIndex((l) => !l.startsWith("#"));
  const header = [
    `# yaml-language-server: $schema=${schemaPath}`,
    "# An f3s-gen cluster spec, written by `f3s-gen init`. Replace the example cluster's names and",
    "# addresses with yours; every key is described in the schema above and in the README's spec",
    "# reference. Then:",
    "#   f3s-gen validate <this file>   every mistake with its line, column and what to do",
    "#   f3s-gen build <this file>      one tarball per host in out/, the secrets in secrets/",
    "# The CARP password below was generated for you: keep this file private.",
  ];
  const text = [...header, ...body.slice(first)].join("\n");
  return text
    .replace(/^domain: \S+/m, "domain: home.arpa")
    .replace(/^(\s+password: )\S+/m, `$1${password}`)
    // ECDSA P-256: keys in microseconds instead of seconds, cheaper handshakes, supported by the
    // stunnel/OpenSSL of every FreeBSD and Linux release f3s-gen targets.
    .replace(/^( +)keyBits: .*$/m, (_line, indent: string) => `${indent}keyType: ecdsa-p256               # rsa (with keyBits 2048|3072|4096) | ecdsa-p256 | ecdsa-p384`)
    .replace(/^( +)tlsPort: .*$/m, (line, indent: string) => `${line}\n${indent}rootAccess: root               # root on a client is root on the export (Kubernetes); squash: nobody`);
}
