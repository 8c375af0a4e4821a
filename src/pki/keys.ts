// Key generation with Node's native crypto. generateKeyPair runs on libuv's thread pool, so several
// keys started together are generated in parallel across cores (node-forge's pure-JavaScript RSA
// takes seconds for one 4096-bit key; OpenSSL inside Node is several times faster, and an ECDSA key
// takes well under a millisecond).
import { generateKeyPair, randomBytes, type KeyObject } from "node:crypto";

/** What `pki.keyType` (and, for RSA, `pki.keyBits`) ask for. */
export type KeyAlgorithm = { type: "rsa"; bits: number } | { type: "ecdsa-p256" } | { type: "ecdsa-p384" };

export interface GeneratedKey {
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"), which stunnel and openssl read for RSA and EC keys alike. */
  privatePem: string;
  /** SubjectPublicKeyInfo DER, placed into certificates as it is (node-forge cannot encode EC keys). */
  publicDer: Buffer;
}

const CURVES = { "ecdsa-p256": "P-256", "ecdsa-p384": "P-384" } as const;

export function generateKey(alg: KeyAlgorithm): Promise<GeneratedKey> {
  const encoding = { privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "der" } } as const;
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicDer: Buffer, privatePem: string) => (err ? reject(err) : resolve({ privatePem, publicDer }));
    if (alg.type === "rsa") generateKeyPair("rsa", { modulusLength: alg.bits, publicExponent: 0x10001, ...encoding }, done);
    else generateKeyPair("ec", { namedCurve: CURVES[alg.type], ...encoding }, done);
  });
}

/** Generates `count` keys at once; `onDone` is called as each finishes (for a progress line). */
export async function generateKeys(count: number, alg: KeyAlgorithm, onDone?: (done: number, total: number) => void): Promise<GeneratedKey[]> {
  let done = 0;
  return Promise.all(
    Array.from({ length: count }, () =>
      generateKey(alg).then((k) => {
        onDone?.(++done, count);
        return k;
      }),
    ),
  );
}

/** "RSA 4096", "ECDSA P-256": how the spec's choice and an existing key are named to the user. */
export function describeAlgorithm(alg: KeyAlgorithm): string {
  return alg.type === "rsa" ? `RSA ${alg.bits}` : `ECDSA ${CURVES[alg.type]}`;
}

/** The algorithm of an existing key, in the spec's terms (undefined for anything f3s-gen does not make). */
export function algorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === "rsa" && d?.modulusLength) return { type: "rsa", bits: d.modulusLength };
  if (key.asymmetricKeyType === "ec" && d?.namedCurve === "prime256v1") return { type: "ecdsa-p256" };
  if (key.asymmetricKeyType === "ec" && d?.namedCurve === "secp384r1") return { type: "ecdsa-p384" };
  return undefined;
}

/** A raw 32-byte ZFS key (keyformat=raw). */
export function generateZfsKey(): Buffer {
  return randomBytes(32);
}

/** A positive, random 128-bit serial number in hex (RFC 5280: at most 20 octets, non-negative). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString("hex");
}
