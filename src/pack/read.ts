// Reads back a tarball f3s-gen wrote (ustar headers, pax path records), for show and diff.
import { gunzipSync } from "node:zlib";
import { FileProblem, UnsafeFileError, readSafely } from "../fs-safe.js";

/** Far above any host's tarball (kilobytes), far below what would exhaust the memory. */
export const MAX_TAR_BYTES = 64 << 20;

export interface TarFile {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  typeflag: string;
  content: Buffer;
}

const field = (b: Buffer, off: number, len: number) => b.subarray(off, off + len).toString("latin1").replace(/\0.*$/s, "");
const octal = (b: Buffer, off: number, len: number) => parseInt(field(b, off, len).trim() || "0", 8);

export function readTarGzBuffer(data: Buffer): TarFile[] {
  // Our tarballs are kilobytes; a huge or hostile one is refused before it fills the memory.
  const tar = gunzipSync(data, { maxOutputLength: MAX_TAR_BYTES });
  const out: TarFile[] = [];
  let off = 0;
  let paxPath: string | undefined;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = octal(h, 124, 12);
    const typeflag = field(h, 156, 1) || "0";
    const content = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (typeflag === "x") {
      paxPath = /\d+ path=([^\n]*)\n/.exec(content.toString("utf8"))?.[1];
      continue;
    }
    const prefix = field(h, 345, 155);
    const path = paxPath ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    paxPath = undefined;
    out.push({ path, mode: octal(h, 100, 8), uid: octal(h, 108, 8), gid: octal(h, 116, 8), uname: field(h, 265, 32), gname: field(h, 297, 32), mtime: octal(h, 136, 12), typeflag, content: Buffer.from(content) });
  }
  return out;
}

/** A file in out/ that is not a tarball f3s-gen wrote (junk, damaged, a FIFO): named, with the fix. */
export class TarballError extends FileProblem {}

export function readTarGz(file: string): TarFile[] {
  try {
    return readTarGzBuffer(readSafely(file, { maxBytes: MAX_TAR_BYTES }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw e;
    const why = e instanceof UnsafeFileError ? e.reason : String((e as Error).message).split("\n")[0];
    throw new TarballError(file, `${file} is not a tarball f3s-gen wrote (${why}): remove it, or build again to replace out/`);
  }
}
