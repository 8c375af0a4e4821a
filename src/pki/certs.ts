// Certificate profiles. node-forge's ASN.1 structures build the X.509 certificate (names and
// extensions with forge's own encoders); the public key goes in as the SubjectPublicKeyInfo DER that
// Node exported (forge cannot encode EC keys), and the signature is made with Node's native crypto
// over the DER TBSCertificate: RSA keys sign with sha256WithRSAEncryption, P-256 with
// ecdsa-with-SHA256, P-384 with ecdsa-with-SHA384 (RFC 5758: ECDSA identifiers carry no parameters).
import { X509Certificate, createHash, createPrivateKey, createPublicKey, sign } from "node:crypto";
import { createRequire } from "node:module";
import type * as Forge from "node-forge";
import { randomSerial, type GeneratedKey } from "./keys.js";

type ForgeModule = typeof Forge;
type Asn1 = Forge.asn1.Asn1;
let forgeModule: ForgeModule | undefined;

const require = createRequire(import.meta.url);

/**
 * node-forge is large; it is loaded only when a certificate has to be issued. By require (it is a
 * CommonJS package): a dynamic import() inside the bundle dist/f3s-gen.cjs, which runs as a
 * vm.Script for the code cache, would need Node's experimental dynamic-import hook.
 */
async function loadForge(): Promise<ForgeModule> {
  forgeModule ??= require("node-forge") as ForgeModule;
  return forgeModule;
}

export interface Subject {
  country?: string;
  state?: string;
  locality?: string;
  organization: string;
  commonName: string;
}

export interface IssueOptions {
  now: Date;
  validityDays: number;
}

export interface Issuer {
  certPem: string;
  keyPem: string;
}

export interface LeafProfile {
  kind: "server" | "client";
  subject: Subject;
  dnsNames: string[];
  ipAddresses: string[];
}

const OID = {
  sha256WithRSAEncryption: "1.2.840.113549.1.1.11",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  ecdsaWithSHA384: "1.2.840.10045.4.3.3",
};

function subjectAttrs(s: Subject) {
  const attrs: { shortName: string; value: string }[] = [];
  if (s.country) attrs.push({ shortName: "C", value: s.country });
  if (s.state) attrs.push({ shortName: "ST", value: s.state });
  if (s.locality) attrs.push({ shortName: "L", value: s.locality });
  attrs.push({ shortName: "O", value: s.organization });
  attrs.push({ shortName: "CN", value: s.commonName });
  return attrs;
}

/** Small constructors over forge's ASN.1, so that the certificate below reads like RFC 5280. */
function der(forge: ForgeModule) {
  const { asn1 } = forge;
  const U = asn1.Class.UNIVERSAL;
  const T = asn1.Type;
  return {
    seq: (items: Asn1[]) => asn1.create(U, T.SEQUENCE, true, items),
    oid: (oid: string) => asn1.create(U, T.OID, false, asn1.oidToDer(oid).getBytes()),
    nul: () => asn1.create(U, T.NULL, false, ""),
    int: (bytes: string) => asn1.create(U, T.INTEGER, false, bytes),
    explicit: (tag: number, item: Asn1) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, true, [item]),
    bits: (bytes: string) => asn1.create(U, T.BITSTRING, false, "\x00" + bytes),
    octets: (bytes: string) => asn1.create(U, T.OCTETSTRING, false, bytes),
    // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on.
    time: (d: Date) =>
      d.getUTCFullYear() < 2050 ? asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(d)) : asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d)),
    parse: (bytes: Buffer) => asn1.fromDer(bytes.toString("binary"), { decodeBitStrings: false } as never),
    bytes: (item: Asn1) => Buffer.from(asn1.toDer(item).getBytes(), "binary"),
  };
}

/** The signature algorithm a signing key implies: hash name for Node, AlgorithmIdentifier for X.509. */
function signatureAlgorithm(forge: ForgeModule, signerKeyPem: string): { hash: string; id: Asn1 } {
  const d = der(forge);
  const key = createPrivateKey(signerKeyPem);
  if (key.asymmetricKeyType === "rsa") return { hash: "sha256", id: d.seq([d.oid(OID.sha256WithRSAEncryption), d.nul()]) };
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "secp384r1") return { hash: "sha384", id: d.seq([d.oid(OID.ecdsaWithSHA384)]) };
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return { hash: "sha256", id: d.seq([d.oid(OID.ecdsaWithSHA256)]) };
  throw new Error(`cannot sign with a ${key.asymmetricKeyType} key`);
}

/** RFC 5280 4.2.1.2, method 1: SHA-1 of the subjectPublicKey BIT STRING (without its unused-bits octet). */
function keyIdentifier(forge: ForgeModule, spkiDer: Buffer): string {
  const spki = der(forge).parse(spkiDer);
  const bitString = (spki.value as Asn1[])[1]!.value as string;
  return createHash("sha1").update(Buffer.from(bitString.slice(1), "binary")).digest().toString("binary");
}

interface CertificateParts {
  serialHex: string;
  issuerName: Asn1;
  subject: Subject;
  notBefore: Date;
  notAfter: Date;
  publicDer: Buffer;
  extensions: object[];
  signerKeyPem: string;
}

function assemble(forge: ForgeModule, p: CertificateParts): string {
  const d = der(forge);
  // forge fills in names and extensions (types, encodings) through its certificate object.
  const holder = forge.pki.createCertificate();
  holder.setSubject(subjectAttrs(p.subject));
  holder.setExtensions(p.extensions as never);
  const alg = signatureAlgorithm(forge, p.signerKeyPem);
  const tbs = d.seq([
    d.explicit(0, d.int("\x02")), // v3
    d.int(forge.util.hexToBytes(p.serialHex)),
    alg.id,
    p.issuerName,
    d.seq([d.time(p.notBefore), d.time(p.notAfter)]),
    forge.pki.distinguishedNameToAsn1(holder.subject),
    d.parse(p.publicDer),
    (forge.pki as unknown as { certificateExtensionsToAsn1(e: unknown[]): Asn1 }).certificateExtensionsToAsn1(holder.extensions),
  ]);
  const signature = sign(alg.hash, d.bytes(tbs), p.signerKeyPem); // ECDSA: DER Ecdsa-Sig-Value, as X.509 wants
  const cert = d.seq([tbs, alg.id, d.bits(signature.toString("binary"))]);
  return forge.pem.encode({ type: "CERTIFICATE", body: d.bytes(cert).toString("binary") }).replace(/\r\n/g, "\n");
}

function validity(opts: IssueOptions, notAfterCap?: Date): { notBefore: Date; notAfter: Date } {
  // An hour of slack for clocks that run behind the machine that issued the certificate.
  const notBefore = new Date(opts.now.getTime() - 3600_000);
  const end = new Date(opts.now.getTime() + opts.validityDays * 86400_000);
  return { notBefore, notAfter: notAfterCap && notAfterCap < end ? notAfterCap : end };
}

export async function issueCa(key: GeneratedKey, subject: Subject, opts: IssueOptions): Promise<string> {
  const forge = await loadForge();
  const holder = forge.pki.createCertificate();
  holder.setSubject(subjectAttrs(subject));
  const ski = keyIdentifier(forge, key.publicDer);
  return assemble(forge, {
    serialHex: randomSerial(),
    issuerName: forge.pki.distinguishedNameToAsn1(holder.subject),
    subject,
    ...validity(opts),
    publicDer: key.publicDer,
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
      { name: "subjectKeyIdentifier", value: der(forge).octets(ski) },
    ],
    signerKeyPem: key.privatePem,
  });
}

export async function issueLeaf(key: GeneratedKey, profile: LeafProfile, issuer: Issuer, opts: IssueOptions): Promise<string> {
  const forge = await loadForge();
  const ca = new X509Certificate(issuer.certPem);
  // The issuer name is the CA's subject exactly as encoded in its certificate (RFC 5280 name chaining).
  const caTbs = (der(forge).parse(ca.raw).value as Asn1[])[0]!.value as Asn1[];
  const caSubject = caTbs[caTbs[0]!.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC ? 5 : 4]!;
  const caKeyId = keyIdentifier(forge, ca.publicKey.export({ type: "spki", format: "der" }));
  const rsa = createPublicKey({ key: key.publicDer, format: "der", type: "spki" }).asymmetricKeyType === "rsa";
  const altNames = [...profile.dnsNames.map((value) => ({ type: 2, value })), ...profile.ipAddresses.map((ip) => ({ type: 7, ip }))];
  return assemble(forge, {
    serialHex: randomSerial(),
    issuerName: caSubject,
    subject: profile.subject,
    ...validity(opts, new Date(ca.validTo)),
    publicDer: key.publicDer,
    extensions: [
      { name: "basicConstraints", cA: false, critical: true },
      // keyEncipherment belongs to RSA key transport only; an EC key never enciphers (RFC 8813).
      { name: "keyUsage", digitalSignature: true, keyEncipherment: rsa, critical: true },
      profile.kind === "server" ? { name: "extKeyUsage", serverAuth: true } : { name: "extKeyUsage", clientAuth: true },
      { name: "subjectAltName", altNames },
      { name: "subjectKeyIdentifier", value: der(forge).octets(keyIdentifier(forge, key.publicDer)) },
      { name: "authorityKeyIdentifier", keyIdentifier: caKeyId },
    ],
    signerKeyPem: issuer.keyPem,
  });
}
