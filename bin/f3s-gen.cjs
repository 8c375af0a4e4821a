#!/usr/bin/env node
// The f3s-gen command: a thin shell around the CLI compiled by `npm ci` / `npm run build`.
// CommonJS, like the bundle it loads: an ES module as the entry point costs Node ~12 ms more to
// start (its module loader), measured against an empty .cjs on this project's bench machine.
"use strict";
const { loadRunMain } = require("./load-cli.cjs");

// A reader that went away (`f3s-gen pki status | head -1`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

loadRunMain()
  .then((runMain) =>
    runMain(process.argv.slice(2), {
      stdout: (s) => process.stdout.write(s),
      stderr: (s) => process.stderr.write(s),
      isTTY: Boolean(process.stderr.isTTY),
      env: process.env,
      cwd: process.cwd(),
      now: () => new Date(),
    }),
  )
  .then((code) => {
    process.exitCode = code;
  });
