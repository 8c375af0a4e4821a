// Deterministic .tar.gz: regular-file entries only (a directory entry would rewrite the metadata of
// /, /etc, ... on extraction), relative sorted paths, uid/gid 0 with empty owner names (tar prefers
// names, and group 0 is "wheel" on FreeBSD but "root" on Linux), one fixed mtime.
//
// tar-stream is used directly rather than through archiver: archiver normalizes "\" to "/" in entry
// names (for Windows paths), which would turn the systemd unit var-lib-k8s\x2dvols.mount into a
// directory. Entry names here are written exactly as given.
//
// The tar stream is collected whole (one host's files, a few hundred KiB at most) and compressed in
// one zlib call on libuv's thread pool: piping tar-stream into a gzip stream cost four times as
// much for the same bytes, and several hosts are compressed in parallel this way.
import { pack } from "tar-stream";
import { gzip, constants } from "node:zlib";

export interface TarEntry {
  path: string;
  mode: number;
  content: Buffer;
}

/** 2000-01-01T00:00:00Z: fixed, so that the same inputs give the same bytes. */
export const FIXED_MTIME = new Date(Date.UTC(2000, 0, 1));

export async function tarGz(entries: readonly TarEntry[], mtime: Date = FIXED_MTIME): Promise<Buffer> {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const e of sorted) {
    if (e.path.startsWith("/") || e.path.split("/").some((c) => c === ".." || c === "." || c === "")) throw new Error(`unsafe tar path ${e.path}`);
  }
  const tar = await new Promise<Buffer>((resolve, reject) => {
    const stream = pack();
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
    for (const e of sorted) {
      stream.entry({ name: e.path, type: "file", size: e.content.length, mode: e.mode, mtime, uid: 0, gid: 0, uname: "", gname: "" }, e.content);
    }
    stream.finalize();
  });
  // zlib's default level: half the CPU of level 9 for tarballs 0.7% larger (measured on a client's).
  return new Promise((resolve, reject) => gzip(tar, { level: constants.Z_DEFAULT_COMPRESSION }, (err, out) => (err ? reject(err) : resolve(out))));
}
