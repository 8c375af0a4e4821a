// A host's release: its files, at the paths they are installed to, staged in the tarball under
// <state>/releases/<id>/, so that `tar -xzpf <host>.tar.gz -C /` changes nothing live. Only the
// command that activates it (usr/local/sbin/f3s-activate, the same bytes as the release's copy) and
// the name of the staged release (<state>/staged) are written outside the release's directory.
// The release id is the start of the MANIFEST's SHA-256: the MANIFEST lists every other file of
// the release with its mode and hash, so the id changes exactly when the release does.
import { createHash } from "node:crypto";
import type { Role } from "../spec/model.js";
import type { TarEntry } from "../pack/tarball.js";
import { ACTIVATE_PATH, MANIFEST_PATH, PUBLIC } from "./artifacts.js";

/** FreeBSD (storage nodes, members) or Linux (clients): where state lives, which tools exist. */
export type Family = "freebsd" | "linux";

export const familyOf = (role: Role): Family => (role === "client" ? "linux" : "freebsd");

/** Where activation keeps its record and the releases, relative to /: FreeBSD keeps such state in /var/db. */
export const stateDirOf = (family: Family): string => (family === "linux" ? "var/lib/f3s" : "var/db/f3s");

export const RELEASE_ID_LENGTH = 16;

export function releaseId(manifest: Buffer): string {
  return createHash("sha256").update(manifest).digest("hex").slice(0, RELEASE_ID_LENGTH);
}

interface ReleaseFile {
  path: string;
  mode: number;
  content: Buffer;
}

/** The tarball entries of one host's release, and its id. */
export function releaseEntries(role: Role, files: readonly ReleaseFile[]): { id: string; entries: TarEntry[] } {
  const manifest = files.find((f) => f.path === MANIFEST_PATH);
  const launcher = files.find((f) => f.path === ACTIVATE_PATH);
  if (!manifest || !launcher) throw new Error("a release needs its MANIFEST and f3s-activate");
  const id = releaseId(manifest.content);
  const state = stateDirOf(familyOf(role));
  return {
    id,
    entries: [
      ...files.map((f) => ({ path: `${state}/releases/${id}/${f.path}`, mode: f.mode, content: f.content })),
      { path: `${state}/staged`, mode: PUBLIC, content: Buffer.from(`${id}\n`) },
      { path: launcher.path, mode: launcher.mode, content: launcher.content },
    ],
  };
}

const RELEASE_ENTRY = new RegExp(`^(var/db/f3s|var/lib/f3s)/releases/([0-9a-f]{${RELEASE_ID_LENGTH}})/(.+)$`);

/**
 * The release a host tarball stages: its id, family and files at the paths they are installed to.
 * Undefined for a tarball that stages no release (a decommission tarball, or one from an older build).
 */
export function releaseOf<T extends { path: string }>(entries: readonly T[]): { id: string; family: Family; files: T[] } | undefined {
  let id: string | undefined;
  let family: Family | undefined;
  const files: T[] = [];
  for (const e of entries) {
    const m = RELEASE_ENTRY.exec(e.path);
    if (!m) continue;
    if (id !== undefined && m[2] !== id) throw new Error(`a tarball with two releases (${id}, ${m[2]})`);
    id = m[2]!;
    family = m[1] === "var/lib/f3s" ? "linux" : "freebsd";
    files.push({ ...e, path: m[3]! });
  }
  return id && family ? { id, family, files } : undefined;
}
