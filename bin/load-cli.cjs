// Loads f3s-gen's CLI: the single-file bundle dist/f3s-gen.cjs through V8's code cache when it is
// there (npm run build makes it), otherwise the ES modules in dist/. The cache holds V8's compiled
// code for the bundle, made at the end of a run (so that it covers what the run compiled), in the
// user's own cache directory: ${XDG_CACHE_HOME:-~/.cache}/f3s-gen, 0700. It is used only from a
// directory and file the user owns that nobody else can write (compiled code from elsewhere would
// run as the user), and V8 itself rejects a cache made for other source or another V8.
// F3S_NO_CODE_CACHE=1 turns it off.
"use strict";
const { createHash } = require("node:crypto");
const { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } = require("node:fs");
const Module = require("node:module");
const { homedir } = require("node:os");
const { dirname, join } = require("node:path");
const { Script } = require("node:vm");

const bundle = join(__dirname, "../dist/f3s-gen.cjs");

const ownedPrivately = (path, kind) => {
  try {
    const st = lstatSync(path);
    return (kind === "dir" ? st.isDirectory() : st.isFile()) && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
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
  return ownedPrivately(dir, "dir") ? dir : undefined;
}

/** Caches of other builds or Node versions, made more than 30 days ago (one per upgrade would pile up). */
function pruneStale(dir, keep) {
  const old = Date.now() - 30 * 24 * 3600 * 1000;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (path !== keep && /^code-[0-9a-f]{16}\.v8$/.test(name) && lstatSync(path).mtimeMs < old) rmSync(path, { force: true });
  }
}

function loadBundle(source) {
  const dir = cacheDir();
  const file = dir && join(dir, `code-${createHash("sha256").update(source).update(process.version).digest("hex").slice(0, 16)}.v8`);
  const cachedData = file && ownedPrivately(file, "file") ? readFileSync(file) : undefined;
  const script = new Script(Module.wrap(source), { filename: bundle, cachedData });
  if (process.env.F3S_DEBUG_CODE_CACHE) process.stderr.write(`code cache: ${file ?? "off"}, ${cachedData ? (script.cachedDataRejected ? "rejected" : "used") : "none yet"}\n`);
  const module = { exports: {} };
  script.runInThisContext()(module.exports, Module.createRequire(bundle), module, bundle, dirname(bundle));
  if (file && (!cachedData || script.cachedDataRejected)) {
    process.once("exit", () => {
      try {
        const tmp = `${file}.${process.pid}`;
        const fd = openSync(tmp, "wx", 0o600);
        writeSync(fd, script.createCachedData());
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
