// Loads f3s-gen's CLI: the single-file bundle dist/f3s-gen.cjs through V8's code cache when it is
// there (npm run build makes it), otherwise the ES modules in dist/. The cache holds V8's compiled
// code for the bundle, made at the end of a run (so that it covers what the run compiled), in the
// user's own cache directory: ${XDG_CACHE_HOME:-~/.cache}/f3s-gen, 0700. Compiled code from
// elsewhere would run as the user, so the file is opened once (no link followed, no FIFO waited on)
// and everything is checked on that descriptor: a regular file the user owns that nobody else can
// write, of sane size, that starts with the SHA-256 of this very bundle and Node version. A check by
// name before the open would let whoever controls a directory above swap the file in between, and
// V8's own check is weak: it takes a cache made from any source of the same length.
// F3S_NO_CODE_CACHE=1 turns it off.
"use strict";
const { createHash } = require("node:crypto");
const { closeSync, constants, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, writeSync } = require("node:fs");
const Module = require("node:module");
const { homedir } = require("node:os");
const { dirname, join } = require("node:path");
const { Script } = require("node:vm");

const bundle = join(__dirname, "../dist/f3s-gen.cjs");

/** The cache directory: the user's, and nobody else's to write (by name: the file itself is checked on its descriptor). */
const ownedPrivately = (path) => {
  try {
    const st = lstatSync(path);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
};

function cacheDir() {
  if (process.env.F3S_NO_CODE_CACHE === "1" || process.getuid === undefined) return undefined;
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "f3s-gen");
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return undefined;
  }
  return ownedPrivately(dir) ? dir : undefined;
}

/** Caches of other builds or Node versions, made more than 30 days ago (one per upgrade would pile up). */
function pruneStale(dir, keep) {
  const old = Date.now() - 30 * 24 * 3600 * 1000;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (path !== keep && /^code-[0-9a-f]{16}\.v8$/.test(name) && lstatSync(path).mtimeMs < old) rmSync(path, { force: true });
  }
}

/** Far above V8's data for the bundle (a few MB); a larger file is not read. */
const MAX_CACHE_BYTES = 64 << 20;
const MAGIC = Buffer.from("f3s-gen code cache 1\n");

/**
 * The V8 data of `file` if it is ours and made for `digest`, else the reason it is not used.
 * Every check is on the one descriptor that is read.
 */
function readCache(file, digest) {
  let fd;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    return { refused: e.code === "ENOENT" ? undefined : `cannot open (${e.code})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { refused: "not a regular file" };
    if (st.uid !== process.getuid()) return { refused: `owned by uid ${st.uid}` };
    if (st.mode & 0o022) return { refused: "writable by others" };
    if (st.size > MAX_CACHE_BYTES || st.size < MAGIC.length + digest.length) return { refused: `${st.size} bytes` };
    const data = Buffer.alloc(st.size);
    let got = 0;
    while (got < data.length) {
      const n = readSync(fd, data, got, data.length - got, null);
      if (n === 0) break;
      got += n;
    }
    const head = data.subarray(0, MAGIC.length + digest.length);
    if (!head.equals(Buffer.concat([MAGIC, digest]))) return { refused: "made for another build or Node" };
    return { data: data.subarray(head.length, got) };
  } finally {
    closeSync(fd);
  }
}

function loadBundle(source) {
  const dir = cacheDir();
  const digest = createHash("sha256").update(source).update("\0").update(process.version).update("\0").update(process.arch).digest();
  const file = dir && join(dir, `code-${digest.toString("hex").slice(0, 16)}.v8`);
  const { data: cachedData, refused } = file ? readCache(file, digest) : {};
  const script = new Script(Module.wrap(source), { filename: bundle, cachedData });
  if (process.env.F3S_DEBUG_CODE_CACHE) process.stderr.write(`code cache: ${file ?? "off"}, ${cachedData ? (script.cachedDataRejected ? "rejected" : "used") : refused ? `refused (${refused})` : "none yet"}\n`);
  const module = { exports: {} };
  script.runInThisContext()(module.exports, Module.createRequire(bundle), module, bundle, dirname(bundle));
  if (file && (!cachedData || script.cachedDataRejected)) {
    process.once("exit", () => {
      try {
        const tmp = `${file}.${process.pid}`;
        const fd = openSync(tmp, "wx", 0o600);
        writeSync(fd, Buffer.concat([MAGIC, digest, script.createCachedData()]));
        fsyncSync(fd);
        closeSync(fd);
        renameSync(tmp, file);
        pruneStale(dir, file);
      } catch {
        // a cache that cannot be written is only a slower next start
      }
    });
  }
  return module.exports;
}

/** runMain of the bundle (with the code cache), or of dist/cli.js when there is no bundle. */
async function loadRunMain() {
  let source;
  try {
    source = readFileSync(bundle, "utf8");
  } catch {
    return (await import("../dist/cli.js")).runMain; // not bundled: the ES modules
  }
  return loadBundle(source).runMain;
}

module.exports = { loadRunMain };
