// Deterministic .tar.gz: regular-file entries only (a directory entry would rewrite the metadata of
// /, /etc, ... on extraction), relative sorted paths, uid/gid 0 with empty owner names (tar prefers
// names, and group 0 is "wheel" on FreeBSD but "root" on Linux), one fixed mtime.
//
// tar-stream is used directly rather than through archiver: archiver normalizes "\" to "/" in entry
// names (for Windows paths), which would turn the systemd unit var-lib-k8s\x2dvols.mount into a
// directory. Entry names here are written exactly as given.
import { pack } from "tar-stream";
import { createGzip, constants } from "node:zlib";

export interface TarEntry {
  path: string;
  mode: number;
  content: Buffer;
}

/** 2000-01-01T00:00:00Z: fixed, so that the same inputs give the same bytes. */
export const FIXED_MTIME = new Date(Date.UTC(2000, 0, 1));

export function tarGz(entries: readonly TarEntry[], mtime: Date = FIXED_MTIME): Promise<Buffer> {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const e of sorted) {
    if (e.path.startsWith("/") || e.path.split("/").some((c) => c === ".." || c === "." || c === "")) throw new Error(`unsafe tar path ${e.path}`);
  }
  return new Promise((resolve, reject) => {
    const tar = pack();
    const gzip = createGzip({ level: constants.Z_BEST_COMPRESSION });
    const chunks: Buffer[] = [];
    gzip.on("data", (c: Buffer) => chunks.push(c));
    gzip.on("end", () => resolve(Buffer.concat(chunks)));
    gzip.on("error", reject);
    tar.on("error", reject);
    tar.pipe(gzip);
    for (const e of sorted) {
      tar.entry({ name: e.path, type: "file", size: e.content.length, mode: e.mode, mtime, uid: 0, gid: 0, uname: "", gname: "" }, e.content);
    }
    tar.finalize();
  });
}
