// Certificate profiles. node-forge builds the X.509 structures; the signature is made with Node's
// native crypto over forge's DER TBSCertificate (exactly what forge's cert.sign does, natively).
import { sign } from "node:crypto";
import type * as Forge from "node-forge";
import { randomSerial, type RsaKey } from "./keys.js";

type ForgeModule = typeof Forge;
let forgeModule: ForgeModule | undefined;

/** node-forge is large; it is loaded only when a certificate has to be issued. */
async function loadForge(): Promise<ForgeModule> {
  forgeModule ??= ((await import("node-forge")) as unknown as { default: ForgeModule }).default;
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

function subjectAttrs(s: Subject) {
  const attrs: { shortName: string; value: string }[] = [];
  if (s.country) attrs.push({ shortName: "C", value: s.country });
  if (s.state) attrs.push({ shortName: "ST", value: s.state });
  if (s.locality) attrs.push({ shortName: "L", value: s.locality });
  attrs.push({ shortName: "O", value: s.organization });
  attrs.push({ shortName: "CN", value: s.commonName });
  return attrs;
}

function signNatively(forge: ForgeModule, cert: Forge.pki.Certificate, signerKeyPem: string): string {
  const oid = forge.pki.oids.sha256WithRSAEncryption!;
  cert.siginfo.algorithmOid = oid;
  (cert as unknown as { signatureOid: string }).signatureOid = oid;
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: Forge.pki.Certificate): Forge.asn1.Asn1 }).getTBSCertificate(cert);
  (cert as unknown as { tbsCertificate: Forge.asn1.Asn1 }).tbsCertificate = tbs;
  const der = Buffer.from(forge.asn1.toDer(tbs).getBytes(), "binary");
  (cert as unknown as { signature: string }).signature = sign("sha256", der, signerKeyPem).toString("binary");
  return forge.pki.certificateToPem(cert);
}

function validity(cert: Forge.pki.Certificate, opts: IssueOptions, notAfterCap?: Date) {
  // An hour of slack for clocks that run behind the machine that issued the certificate.
  cert.validity.notBefore = new Date(opts.now.getTime() - 3600_000);
  const end = new Date(opts.now.getTime() + opts.validityDays * 86400_000);
  cert.validity.notAfter = notAfterCap && notAfterCap < end ? notAfterCap : end;
}

export async function issueCa(key: RsaKey, subject: Subject, opts: IssueOptions): Promise<string> {
  const forge = await loadForge();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicPem);
  cert.serialNumber = randomSerial();
  validity(cert, opts);
  cert.setSubject(subjectAttrs(subject));
  cert.setIssuer(subjectAttrs(subject));
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  return signNatively(forge, cert, key.privatePem);
}

export async function issueLeaf(key: RsaKey, profile: LeafProfile, issuer: Issuer, opts: IssueOptions): Promise<string> {
  const forge = await loadForge();
  const ca = forge.pki.certificateFromPem(issuer.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicPem);
  cert.serialNumber = randomSerial();
  validity(cert, opts, ca.validity.notAfter);
  cert.setSubject(subjectAttrs(profile.subject));
  cert.setIssuer(ca.subject.attributes);
  const altNames = [...profile.dnsNames.map((value) => ({ type: 2, value })), ...profile.ipAddresses.map((ip) => ({ type: 7, ip }))];
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    profile.kind === "server" ? { name: "extKeyUsage", serverAuth: true } : { name: "extKeyUsage", clientAuth: true },
    { name: "subjectAltName", altNames },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  return signNatively(forge, cert, issuer.keyPem);
}
