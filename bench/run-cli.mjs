// Runs the built CLI in this process and prints its peak memory (maxRSS, KiB) on stderr at exit,
// so that the benchmark measures a whole run, start-up included, and its memory.
// Loaded as bin/f3s-gen.cjs loads it (the bundle, with the code cache), so the bench times what users run.
import { loadRunMain } from "../bin/load-cli.cjs";

const runMain = await loadRunMain();

process.on("exit", () => process.stderr.write(`\nmaxrss_kib=${process.resourceUsage().maxRSS}\n`));
process.exitCode = await runMain(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  isTTY: false,
  env: process.env,
  cwd: process.cwd(),
  now: () => new Date(),
});
