// The files of one host's tarball in out/: mode, size, sha256; and one file's content on request.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { UNHASHED_FILES } from "../render/artifacts.js";
import { createHash } from "node:crypto";
import { readTarGz, type TarFile } from "../pack/read.js";
import { releaseOf } from "../render/release.js";

export interface ShownFile {
  path: string;
  mode: string;
  size: number;
  sha256: string | null;
  /** Private key material: listed, never printed. */
  private: boolean;
}

/**
 * The tarballs in out/, by host name ("keys" for keys.tar.gz): for a host, the files of the release
 * it stages, at the paths they are installed to.
 */
export function readOutDir(outDir: string): Map<string, TarFile[]> {
  const hosts = new Map<string, TarFile[]>();
  if (!existsSync(outDir)) return hosts;
  for (const name of readdirSync(outDir).filter((n) => n.endsWith(".tar.gz")).sort()) {
    const entries = readTarGz(join(outDir, name));
    hosts.set(name.slice(0, -".tar.gz".length), releaseOf(entries)?.files ?? entries);
  }
  return hosts;
}

/** One host's tarball in out/ (only that file is read: junk beside it does not matter), or undefined. */
export function readOutHost(outDir: string, host: string): TarFile[] | undefined {
  const file = join(outDir, `${host}.tar.gz`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(host) || !existsSync(file)) return undefined;
  const entries = readTarGz(file);
  return releaseOf(entries)?.files ?? entries;
}

/** Private key material: the key bundle, files only root may read, anything holding a private key. */
export function isPrivateFile(host: string, f: { path?: string; mode: number; content: Buffer }): boolean {
  if (host === "keys" || /PRIVATE KEY-----/.test(f.content.toString("latin1"))) return true;
  // Root-only files whose one secret is masked where they are shown (netif) are not key material.
  return (f.mode & 0o077) === 0 && !(f.path !== undefined && UNHASHED_FILES.has(f.path));
}

export function showHost(host: string, files: TarFile[]): ShownFile[] {
  return files.map((f) => ({
    path: f.path,
    mode: f.mode.toString(8).padStart(4, "0"),
    size: f.content.length,
    // A hash of a file with a short secret would give the secret away (UNHASHED_FILES).
    sha256: UNHASHED_FILES.has(f.path) ? null : createHash("sha256").update(f.content).digest("hex"),
    private: isPrivateFile(host, f),
  }));
}
