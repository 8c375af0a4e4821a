// What a rebuild would change against the tarballs in out/: per host and per file, a unified diff
// for text, a readable summary for certificates, and a note (never the content) for private keys.
import { X509Certificate } from "node:crypto";
import { createTwoFilesPatch } from "diff";
import { isPrivateFile } from "./show.js";

export interface FileState {
  path: string;
  mode: number;
  content: Buffer;
}

export interface FileChange {
  path: string;
  kind: "added" | "removed" | "changed";
  oldMode: string | null;
  newMode: string | null;
  /** Unified diff of the text (or of the certificate summary); null for private material. */
  patch: string | null;
  /** Why there is no patch, or what kind of content changed. */
  note: string | null;
}

export interface HostDiff {
  host: string;
  status: "added" | "removed" | "changed" | "unchanged";
  files: FileChange[];
}

const octal = (mode: number) => mode.toString(8).padStart(4, "0");

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** A certificate file as lines a person can compare: one line per certificate. */
export function certificateSummary(content: Buffer, fresh: ReadonlySet<string> = new Set()): string | null {
  const pems = content.toString("utf8").match(PEM_CERT);
  if (!pems) return null;
  return (
    pems
      .map((pem) => {
        const c = new X509Certificate(pem);
        const cn = c.subject.split("\n").find((l) => l.startsWith("CN=")) ?? c.subject;
        // Issued only in memory for this diff: a build makes another serial and fingerprint.
        if (fresh.has(normalizePem(pem))) return `${cn} (new: serial and fingerprint are made by the build)`;
        return `${cn} serial ${c.serialNumber.toLowerCase()} not after ${new Date(c.validTo).toISOString().slice(0, 10)} SHA-256 ${c.fingerprint256}`;
      })
      .join("\n") + "\n"
  );
}

const normalizePem = (pem: string) => pem.replace(/\s+/g, "");

function describeChange(host: string, path: string, before: FileState | undefined, after: FileState | undefined, fresh: ReadonlySet<string>): FileChange {
  const kind = !before ? "added" : !after ? "removed" : "changed";
  const base = { path, kind, oldMode: before ? octal(before.mode) : null, newMode: after ? octal(after.mode) : null } as const;
  const sample = (after ?? before)!;
  // Never shown, not even as a diff.
  if (isPrivateFile(host, { ...sample, path })) return { ...base, patch: null, note: "private key material (not shown)" };
  const oldCerts = before ? certificateSummary(before.content) : "";
  const newCerts = after ? certificateSummary(after.content, fresh) : "";
  if (oldCerts !== null && newCerts !== null && (oldCerts || newCerts)) {
    return { ...base, patch: createTwoFilesPatch(`a/${path}`, `b/${path}`, oldCerts ?? "", newCerts ?? "", "", "", { context: 1 }), note: "certificates" };
  }
  const oldText = before?.content.toString("utf8") ?? "";
  const newText = after?.content.toString("utf8") ?? "";
  if (kind === "changed" && oldText === newText) return { ...base, patch: null, note: `mode ${base.oldMode} -> ${base.newMode}` };
  return { ...base, patch: createTwoFilesPatch(`a/${path}`, `b/${path}`, oldText, newText, "", "", { context: 3 }), note: null };
}

/** Replaces every occurrence of each secret (e.g. the CARP password in rc.conf.d/netif) with stars. */
export function redact(text: string, secrets: readonly string[]): string {
  return secrets.filter((s) => s.length > 0).reduce((t, s) => t.split(s).join("********"), text);
}

/**
 * Compares the files of each host as out/ has them with what a build would write now. `secrets` are
 * values that may appear in generated text (the CARP password) and must not appear in a patch.
 */
export function diffHosts(before: Map<string, FileState[]>, after: Map<string, FileState[]>, secrets: readonly string[] = [], freshCerts: readonly string[] = []): HostDiff[] {
  const fresh = new Set(freshCerts.map(normalizePem));
  const hosts = [...new Set([...before.keys(), ...after.keys()])].sort();
  return hosts.map((host) => {
    const old = new Map((before.get(host) ?? []).map((f) => [f.path, f]));
    const next = new Map((after.get(host) ?? []).map((f) => [f.path, f]));
    const paths = [...new Set([...old.keys(), ...next.keys()])].sort();
    const files = paths
      .filter((p) => {
        const a = old.get(p);
        const b = next.get(p);
        return !a || !b || a.mode !== b.mode || !a.content.equals(b.content);
      })
      .map((p) => describeChange(host, p, old.get(p), next.get(p), fresh))
      .map((c) => ({ ...c, patch: c.patch === null ? null : redact(c.patch, [...secrets, ...oldSecretsIn(old.get(c.path))]) }));
    const status = !before.has(host) ? "added" : !after.has(host) ? "removed" : files.length ? "changed" : "unchanged";
    return { host, status, files };
  });
}

/** The CARP password an older build wrote into rc.conf.d/netif (it may differ from the spec's now). */
export function oldSecretsIn(file: FileState | undefined): string[] {
  if (!file) return [];
  return [...file.content.toString("utf8").matchAll(/\bpass ([^\s"]+)/g)].map((m) => m[1]!);
}
