// Key generation with Node's native crypto. generateKeyPair runs on libuv's thread pool, so several
// keys started together are generated in parallel across cores (node-forge's pure-JavaScript RSA
// takes seconds for one 4096-bit key; OpenSSL inside Node is several times faster).
import { generateKeyPair, randomBytes } from "node:crypto";

export interface RsaKey {
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"), which stunnel and openssl read. */
  privatePem: string;
  /** SubjectPublicKeyInfo PEM. */
  publicPem: string;
}

export function generateRsaKey(bits: number): Promise<RsaKey> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      "rsa",
      {
        modulusLength: bits,
        publicExponent: 0x10001,
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
        publicKeyEncoding: { type: "spki", format: "pem" },
      },
      (err, publicPem, privatePem) => (err ? reject(err) : resolve({ privatePem, publicPem })),
    );
  });
}

/** Generates `count` keys at once; `onDone` is called as each finishes (for a progress line). */
export async function generateRsaKeys(count: number, bits: number, onDone?: (done: number, total: number) => void): Promise<RsaKey[]> {
  let done = 0;
  return Promise.all(
    Array.from({ length: count }, () =>
      generateRsaKey(bits).then((k) => {
        onDone?.(++done, count);
        return k;
      }),
    ),
  );
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
