// Arguments in, exit code out: the only module that prints or exits.
// Exit codes: 0 success, 1 invalid input (spec or secrets), 2 usage error.
import { appendFileSync, existsSync, lstatSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { hasErrors, type Diagnostic } from "./diag/diagnostic.js";
import { diagnosticToJson, formatDiagnostics, type SpecSource } from "./diag/format.js";
import { checkSpecFile } from "./spec/index.js";
import { closest } from "./spec/suggest.js";
import { COMMANDS } from "./completion.js";
import { RETIRED_DIR, retiredHosts } from "./render/retired.js";
import { KEYS_NAME, build, plan } from "./pipeline.js";
import { examplesDir, packageRoot, schemaPath } from "./paths.js";
import { OutputError } from "./pack/output.js";
import { FileProblem, realPathOf } from "./fs-safe.js";
import { LockError, withLocks } from "./lock.js";
import type { ReissueTarget } from "./pki/manage.js";
// diff, show and pki are loaded by their commands only: a build should not pay for them.
const manage = () => import("./pki/manage.js");
const inspectDiff = () => import("./inspect/diff.js");
const inspectShow = () => import("./inspect/show.js");
import { SecretsError } from "./pki/store.js";

const isLink = (p: string) => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};

export const EXIT = { ok: 0, invalid: 1, usage: 2, changes: 3 } as const;

const HELP = `f3s-gen: one YAML spec in, one deployable tarball per host out, for a highly available,
encrypted NFS storage pair (FreeBSD, ZFS, zrepl, CARP, stunnel) and its Linux clients.

Usage:
  f3s-gen build <spec> [--out DIR] [--secrets DIR] [--json] [--quiet] [--strict] [--replace-zfs-keys]
                              build out/<host>.tar.gz for every host and out/keys.tar.gz
  f3s-gen validate <spec> [--json] [--strict]
                              check the spec; write nothing
  f3s-gen diff <spec> [--out DIR] [--secrets DIR] [--json]
                              what a rebuild would change against out/; exit 0 none, 3 changes
  f3s-gen show <host> [--out DIR] [--cat PATH] [--json]
                              the files of out/<host>.tar.gz (mode, size, sha256), or one file
  f3s-gen init [PATH]         write a spec to start from to PATH (default: f3s.yaml)
  f3s-gen pki status [<spec>] [--secrets DIR] [--json]
                              every certificate: host, CN, expiry, days left, SHA-256
  f3s-gen pki renew <spec> (NAME... | server | --all) [--secrets DIR] [--dry-run]
                              re-issue leaf certificates (new keys) under the same CA
  f3s-gen pki revoke <spec> NAME [--secrets DIR] [--dry-run]
                              refuse a client's current certificate and issue it a new one
  f3s-gen pki rotate-ca <spec> [--secrets DIR] [--immediate] [--dry-run]
                              roll to a new CA in three stages, one per run, each deployed
                              everywhere before the next: no client loses its mount (ZFS keys kept);
                              --immediate: all at once (a compromised CA), clients fail until deployed
  f3s-gen completion bash|zsh|fish
                              a shell completion script; install it with one of:
                                f3s-gen completion bash > /etc/bash_completion.d/f3s-gen
                                f3s-gen completion zsh > "\${fpath[1]}/_f3s-gen"   (then compinit)
                                f3s-gen completion fish > ~/.config/fish/completions/f3s-gen.fish
  f3s-gen <command> --help    the usage of one command
  f3s-gen --help | --version

Options:
  --out DIR       where tarballs go (default: out beside the spec; without a spec, ./out);
                  replaced as a whole by every build, and only by builds of the same cluster
  --secrets DIR   the CA, keys and certificates, created on the first build and reused
                  after (default: secrets beside the spec; without a spec, ./secrets); keep
                  it out of git and back it up
  --replace-zfs-keys
                  write keys.tar.gz although a key in it differs from the one out/ holds
                  (only after re-creating the datasets with the new key)
  --dry-run       pki renew, revoke, rotate-ca: say what would change; write nothing
  --json          machine-readable output on stdout
  --quiet         print errors only
  --strict        treat warnings as errors

Exit codes: 0 success, 1 invalid spec or secrets, 2 usage error, 3 diff found changes.
`;

/** The usage lines of one command (what `f3s-gen <command> --help` prints), cut from HELP. */
function commandHelp(command: string): string | undefined {
  const lines = HELP.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`  f3s-gen ${command} `) || l === `  f3s-gen ${command}`);
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && /^ {20,}\S/.test(lines[end]!)) end++;
  // pki has several sub-commands, each its own entry.
  while (command === "pki" && end < lines.length && lines[end]!.startsWith("  f3s-gen pki ")) {
    end++;
    while (end < lines.length && /^ {20,}\S/.test(lines[end]!)) end++;
  }
  const options = lines.slice(lines.indexOf("Options:"), lines.findIndex((l) => l.startsWith("Exit codes:")));
  const used = lines.slice(start, end).join("\n");
  const flags = [...used.matchAll(/--[\w-]+/g)].map((m) => m[0]);
  // An option's line and the lines that continue its description.
  let keep = false;
  const relevant = options.filter((l, i) => {
    if (i === 0) return true;
    if (/^ {2}-/.test(l)) keep = flags.some((f) => l.trimStart().startsWith(f + " ") || l.trim() === f);
    return keep;
  });
  const examples = EXAMPLES[command];
  // Only the exit codes this command can end with.
  const codes = command === "diff" ? "Exit codes: 0 no changes, 3 changes, 1 invalid spec or secrets, 2 usage error." : "Exit codes: 0 success, 1 invalid spec or secrets (or a file in the way), 2 usage error.";
  return ["Usage:", ...lines.slice(start, end), "", ...(relevant.length > 1 ? [...relevant, ""] : []), ...(examples ? ["Examples:", ...examples.map((e) => `  ${e}`), ""] : []), codes, ""].join("\n");
}

/**
 * A few lines per command for --help, run as written in a directory with cluster.yaml once the
 * placeholders <storage-node>, <client> and <host> are names from that spec (the test does so).
 */
const EXAMPLES: Record<string, string[]> = {
  build: ["f3s-gen build cluster.yaml                # out/ and secrets/ beside the spec", "f3s-gen build cluster.yaml --json | jq '.hosts[] | {name, changed}'"],
  validate: ["f3s-gen validate cluster.yaml", "f3s-gen validate cluster.yaml --strict     # warnings fail too (CI)"],
  diff: ["f3s-gen diff cluster.yaml                 # before a rollout: what changes, per host and file"],
  show: ["f3s-gen show <host>                       # the files of out/<host>.tar.gz", "f3s-gen show <storage-node> --cat /etc/exports"],
  init: ["f3s-gen init cluster.yaml                 # plus cluster.carp-password and .gitignore"],
  pki: ["f3s-gen pki status", "f3s-gen pki renew cluster.yaml <client> --dry-run", "f3s-gen pki revoke cluster.yaml <client>", "f3s-gen pki rotate-ca cluster.yaml         # three times, a rollout after each"],
  completion: ["f3s-gen completion bash > /etc/bash_completion.d/f3s-gen"],
};

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
  now: () => Date;
}

interface Parsed {
  command?: string;
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(["--out", "--secrets", "--cat"]);
const BOOL_FLAGS = new Set(["--json", "--quiet", "--strict", "--help", "--version", "-h", "-V", "--all", "--debug", "--replace-zfs-keys", "--immediate", "--dry-run"]);

class UsageError extends Error {}

function parse(argv: string[]): Parsed {
  const parsed: Parsed = { positional: [], flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith("-") && arg !== "-") {
      const [name, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
      if (VALUE_FLAGS.has(name)) {
        const value = inline ?? argv[++i];
        if (value === undefined || value === "") throw new UsageError(`${name} needs a value`);
        parsed.flags.set(name, value);
      } else if (BOOL_FLAGS.has(name) && inline === undefined) parsed.flags.set(name, true);
      else throw new UsageError(`unknown option ${name}`);
    } else if (!parsed.command) parsed.command = arg;
    else parsed.positional.push(arg);
  }
  return parsed;
}

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { version: string }).version;
}

function useColor(io: Io): boolean {
  return io.isTTY && !("NO_COLOR" in io.env) && io.env.TERM !== "dumb";
}

function printDiagnostics(io: Io, list: Diagnostic[], source: SpecSource | undefined, quiet: boolean) {
  const shown = quiet ? list.filter((d) => d.severity === "error") : list;
  if (shown.length) io.stderr(formatDiagnostics(shown, source, { color: useColor(io) }) + "\n");
}

function failed(list: Diagnostic[], strict: boolean): boolean {
  return hasErrors(list) || (strict && list.length > 0);
}

/** With --strict, a run that fails on warnings alone says so in its last line. */
function strictNote(io: Io, list: Diagnostic[], strict: boolean) {
  if (strict && list.length > 0 && !hasErrors(list)) io.stderr(`f3s-gen: --strict: ${list.length} warning(s) count as errors; nothing was written\n`);
}

/** The spec argument: where to read it (resolved against the working directory) and its name in messages. */
function specArg(p: Parsed, command: string, io: Io): { path: string; name: string } {
  if (p.positional.length !== 1) throw new UsageError(`${command} takes one spec file`);
  return specFile(p.positional[0]!, io);
}

function specFile(name: string, io: Io): { path: string; name: string } {
  const path = resolve(io.cwd, name);
  if (!existsSync(path)) {
    // my-cluster.yml for my-cluster.yaml, or a typo: the nearest spec-like file in that directory.
    let near: string | undefined;
    try {
      near = closest(basename(path), readdirSync(dirname(path)).filter((n) => /\.ya?ml$/i.test(n)));
    } catch {
      near = undefined;
    }
    throw new UsageError(`no such file: ${name}${near ? `; did you mean ${join(dirname(name), near)}?` : ""}`);
  }
  return { path, name };
}

/** What a failed system call means, in words, for the file it names. */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  ENOTDIR: "a part of the path is not a directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  ENAMETOOLONG: "file name too long",
  EEXIST: "already exists",
  EISDIR: "is a directory",
  EMFILE: "too many open files",
  EIO: "input/output error",
};

/**
 * Whatever happens, one line that names the operation and the file, exit 1, and (with --json)
 * JSON on stdout; the stack only with --debug or F3S_DEBUG=1.
 */
function unexpected(e: unknown, argv: string[], io: Io): number {
  const err = e as NodeJS.ErrnoException & { dest?: string };
  const what = argv.filter((a) => !a.startsWith("-")).slice(0, argv[0] === "pki" ? 2 : 1).join(" ") || "f3s-gen";
  // A file that is not what it should be (its message names it) is the user's to fix, not a bug.
  const known = err?.code ? ERRNO_TEXT[err.code] : e instanceof FileProblem ? "file" : undefined;
  const message = e instanceof FileProblem ? e.message : known ? `${known}${err.path ? `: ${err.path}` : ""}${err.dest ? ` -> ${err.dest}` : ""}` : String(err?.message ?? e).split("\n")[0]!;
  if (argv.includes("--json")) jsonFailure(io, { operation: what, code: err?.code ?? "internal", message });
  io.stderr(`f3s-gen: ${what} failed: ${message}\n`);
  if (argv.includes("--debug") || io.env.F3S_DEBUG === "1") io.stderr(`${err?.stack ?? e}\n`);
  else if (!known) io.stderr("This is a bug in f3s-gen; run it again with --debug and report what it prints.\n");
  return EXIT.invalid;
}

/**
 * With --json, every failure of every command is one shape on stdout (docs/commands.md, `--json`):
 * { ok: false, error: { code, message, operation? }, diagnostics: [Diagnostic] }, plus what the
 * command's own output has (e.g. build's hosts: []). Success is { ok: true, ... }.
 */
function jsonFailure(io: Io, error: { code: string; message: string; operation?: string }, diagnostics: Diagnostic[] = []) {
  io.stdout(JSON.stringify({ ok: false, error, diagnostics: diagnostics.map(diagnosticToJson) }, null, 2) + "\n");
}

/** The `error` of a failure told by diagnostics: its first error (or why warnings failed it). */
function diagnosticsError(diagnostics: Diagnostic[]): { code: string; message: string } {
  const errors = diagnostics.filter((d) => d.severity === "error");
  const first = errors[0];
  if (!first) return { code: "strict", message: `${diagnostics.length} warning(s), treated as errors (--strict)` };
  return { code: first.code, message: `${first.location ? `${first.location.file}:${first.location.line}:${first.location.col}: ` : ""}${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more error(s))` : ""}` };
}

export async function runMain(argv: string[], io: Io): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (e) {
    return unexpected(e, argv, io);
  }
}

async function dispatch(argv: string[], io: Io): Promise<number> {
  let p: Parsed;
  try {
    p = parse(argv);
    if (p.flags.has("--help") || p.flags.has("-h") || p.command === "help") {
      const topic = p.command === "help" ? p.positional[0] : p.command;
      io.stdout((topic && commandHelp(topic)) || HELP);
      return EXIT.ok;
    }
    if (p.flags.has("--version") || p.flags.has("-V")) {
      io.stdout(version() + "\n");
      return EXIT.ok;
    }
    if (!p.command) throw new UsageError("no command given");
    const json = p.flags.has("--json");
    const quiet = p.flags.has("--quiet");
    const strict = p.flags.has("--strict");
    switch (p.command) {
      case "validate": {
        const spec = specArg(p, "validate", io);
        const checked = checkSpecFile(spec.path, spec.name, io.env);
        const bad = failed(checked.diagnostics, strict);
        if (json) io.stdout(JSON.stringify({ ok: !bad, ...(bad ? { error: diagnosticsError(checked.diagnostics) } : {}), valid: !bad, diagnostics: checked.diagnostics.map(diagnosticToJson) }, null, 2) + "\n");
        else {
          printDiagnostics(io, checked.diagnostics, specSource(checked.loaded), quiet);
          strictNote(io, checked.diagnostics, strict);
          if (!bad && !quiet) io.stdout(`${spec.name}: valid (${checked.model!.hosts.length} hosts)\n`);
        }
        return bad ? EXIT.invalid : EXIT.ok;
      }
      case "build":
        return await runBuild(p, io, { json, quiet, strict });
      case "init": {
        if (p.positional.length > 1) throw new UsageError("init takes at most one path");
        const target = resolve(io.cwd, p.positional[0] ?? "f3s.yaml");
        // lstat, not exists: a dangling symbolic link "does not exist" but would be written through.
        if (existsSync(target) || isLink(target)) {
          io.stderr(`f3s-gen: ${target} exists${isLink(target) ? " (a symbolic link)" : ""}; not overwriting it\n`);
          return EXIT.invalid;
        }
        if (!existsSync(dirname(target))) {
          io.stderr(`f3s-gen: cannot write ${target}: the directory ${dirname(target)} does not exist\n`);
          return EXIT.invalid;
        }
        const { initialSpec, passwordFileFor, randomCarpPassword, gitignoreAddition } = await import("./init.js");
        const passwordName = passwordFileFor(basename(target));
        const passwordPath = join(dirname(target), passwordName);
        if (existsSync(passwordPath) || isLink(passwordPath)) {
          io.stderr(`f3s-gen: ${passwordPath} exists; not overwriting it (choose another spec name)\n`);
          return EXIT.invalid;
        }
        // "wx": O_CREAT|O_EXCL, so a link planted between the check and the write is refused too.
        writeFileSync(passwordPath, randomCarpPassword() + "\n", { mode: 0o600, flag: "wx" });
        try {
          writeFileSync(target, initialSpec(readFileSync(join(examplesDir, "f3s.example.yaml"), "utf8"), schemaPath, passwordName), { mode: 0o644, flag: "wx" });
        } catch (e) {
          rmSync(passwordPath, { force: true });
          throw e;
        }
        // Keep the secrets, the tarballs (they carry keys) and the password out of git.
        const gitignore = join(dirname(target), ".gitignore");
        if (!isLink(gitignore)) {
          const addition = gitignoreAddition(existsSync(gitignore) ? readFileSync(gitignore, "utf8") : "");
          if (addition) appendFileSync(gitignore, addition, { mode: 0o644 });
        }
        if (!quiet) io.stdout(`wrote ${target} and ${passwordPath} (0600: the generated CARP password; .gitignore lists it with secrets/ and out/): put your cluster's names and addresses in, then run f3s-gen build ${p.positional[0] ?? "f3s.yaml"}\n`);
        return EXIT.ok;
      }
      case "pki":
        return await runPki(p, io, { json, quiet });
      case "diff":
        return await runDiff(p, io, { json, quiet });
      case "show":
        return await runShow(p, io, { json });
      case "completion": {
        const shell = p.positional[0];
        const { completionScript } = await import("./completion.js");
        const script = shell && p.positional.length === 1 ? completionScript(shell) : undefined;
        if (!script) throw new UsageError("completion takes one of bash, zsh, fish");
        io.stdout(script);
        return EXIT.ok;
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(p.command)}${closest(p.command, [...COMMANDS, "help"]) ? `; did you mean ${closest(p.command, [...COMMANDS, "help"])}?` : ""}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      if (argv.includes("--json")) jsonFailure(io, { code: "usage", message: e.message });
      io.stderr(`f3s-gen: ${e.message}\nRun f3s-gen --help for usage.\n`);
      return EXIT.usage;
    }
    throw e;
  }
}

async function runBuild(p: Parsed, io: Io, o: { json: boolean; quiet: boolean; strict: boolean }): Promise<number> {
  const spec = specArg(p, "build", io);
  const outDir = outDirOf(p, io, spec);
  const secretsDir = secretsDirOf(p, io, spec);
  const moved = movedDefaults(p, io, spec);
  if (moved) {
    if (o.json) jsonFailure(io, { code: "output", message: moved });
    io.stderr(`f3s-gen: ${moved}\n`);
    return EXIT.invalid;
  }
  const progress = io.isTTY && !o.json && !o.quiet ? (done: number, total: number) => io.stderr(done === total ? "\r\x1b[K" : `\rgenerating keys: ${done}/${total}`) : undefined;
  // --strict must fail before anything is written, so warnings are checked on the spec first.
  if (o.strict) {
    const checked = checkSpecFile(spec.path, spec.name, io.env);
    if (checked.diagnostics.length > 0) {
      const code = report(io, o, checked.diagnostics, specSource(checked.loaded), undefined, true);
      if (!o.json) strictNote(io, checked.diagnostics, true);
      return code;
    }
  }
  let result;
  try {
    result = await withLocks([outDir, secretsDir], () =>
      build({ specPath: spec.path, specName: spec.name, outDir, secretsDir, now: io.now(), onProgress: progress, replaceZfsKeys: p.flags.has("--replace-zfs-keys"), env: io.env }),
    );
  } catch (e) {
    if (e instanceof OutputError || e instanceof LockError) {
      if (o.json) jsonFailure(io, { code: "output", message: e.message });
      io.stderr(`f3s-gen: ${e.message}\n`);
      return EXIT.invalid;
    }
    throw e;
  }
  if (!result.hosts) return report(io, o, result.diagnostics, specSource(result.checked.loaded), undefined, true);
  return report(io, o, result.diagnostics, specSource(result.checked.loaded), { result, outDir, secretsDir }, o.strict && result.diagnostics.length > 0);
}

/** What diagnostics may quote of the spec: its masked text, under the name they are located by. */
const specSource = (loaded: { display: string; sourceMap: { file: string } }): SpecSource => ({ file: loaded.sourceMap.file, text: loaded.display });

function report(
  io: Io,
  o: { json: boolean; quiet: boolean },
  diagnostics: Diagnostic[],
  source: SpecSource | undefined,
  built: { result: Awaited<ReturnType<typeof build>>; outDir: string; secretsDir: string } | undefined,
  bad: boolean,
): number {
  if (o.json) {
    io.stdout(
      JSON.stringify(
        {
          ok: !!built && !bad,
          ...(!built || bad ? { error: diagnosticsError(diagnostics) } : {}),
          diagnostics: diagnostics.map(diagnosticToJson),
          out: built?.outDir ?? null,
          secrets: built?.secretsDir ?? null,
          secretChanges: built?.result.secretChanges ?? [],
          hosts: built?.result.hosts ?? [],
          retired: built?.result.retired ?? [],
        },
        null,
        2,
      ) + "\n",
    );
  } else {
    printDiagnostics(io, diagnostics, source, o.quiet);
    if (built && !o.quiet) {
      const { result, outDir, secretsDir } = built;
      const lines = [`built ${result.hosts!.length} host tarballs and keys.tar.gz in ${outDir}`];
      for (const h of result.hosts!) lines.push(`  ${h.name.padEnd(16)} ${h.role.padEnd(8)} ${String(h.files).padStart(3)} files  ${h.tarball}  release ${h.release}${h.changed === "unchanged" ? "" : ` (${h.changed})`}`);
      for (const r of result.retired ?? []) lines.push(`  ${r.name.padEnd(16)} retired    no longer in the spec: retired/${r.name}.tar.gz, then /usr/local/sbin/f3s-decommission`);
      lines.push(`secrets: ${secretsDir}${result.secretChanges.length ? "" : " (reused, unchanged)"}`);
      for (const c of result.secretChanges) lines.push(`  ${c}`);
      lines.push(`deploy: ansible-playbook -i ${join(outDir, "inventory.yml")} ${join(outDir, "ansible/deploy.yml")} (--check --diff first: the plan)`);
      io.stdout(lines.join("\n") + "\n");
    }
  }
  return built && !bad ? EXIT.ok : EXIT.invalid;
}

/**
 * --secrets, or `secrets` beside the spec: the same spec finds the same secrets from any working
 * directory (a default that followed the working directory made a new CA and new ZFS keys when
 * the build ran from elsewhere). Without a spec (pki status, show), the working directory's.
 */
function secretsDirOf(p: Parsed, io: Io, spec?: { path: string }): string {
  const given = p.flags.get("--secrets") as string | undefined;
  const dir = given !== undefined ? resolve(io.cwd, given) : resolve(spec ? dirname(spec.path) : io.cwd, "secrets");
  // By its real path: the same directory named through a link is the same directory (its lock,
  // its checks), and a link is not followed anew at every step; not made yet, its parent's.
  return realPathOf(dir);
}

/**
 * Before secrets and out/ were found beside the spec, they were made in the working directory: a
 * build from there would now miss them and make a new CA and new ZFS keys. Said, never done.
 */
function movedDefaults(p: Parsed, io: Io, spec: { path: string; name: string }): string | undefined {
  const beside = dirname(spec.path);
  if (resolve(io.cwd) === beside) return undefined;
  for (const [flag, name] of [["--secrets", "secrets"], ["--out", "out"]] as const) {
    if (p.flags.has(flag) || existsSync(join(beside, name)) || !existsSync(join(io.cwd, name))) continue;
    return `${join(beside, name)} does not exist, but ./${name} does: ${name}/ is now found beside the spec, not in the working directory. Move it there (mv ${name} ${join(beside, name)}), or name it: f3s-gen build ${spec.name} ${flag} ${name}`;
  }
  return undefined;
}

async function runPki(p: Parsed, io: Io, o: { json: boolean; quiet: boolean }): Promise<number> {
  const [sub, ...rest] = p.positional;
  // The secrets beside the spec when one is named (every pki command but status needs one).
  const secretsDir = secretsDirOf(p, io, rest[0] !== undefined ? specFile(rest[0], io) : undefined);
  if (sub === "status") {
    // A spec may be named like every other pki command's; the secrets directory is what status reads.
    if (rest.length > 1) throw new UsageError("pki status takes at most the spec");
    const { pkiStatus } = await manage();
    let result;
    try {
      result = pkiStatus(secretsDir, io.now());
    } catch (e) {
      if (e instanceof SecretsError) return report(io, o, e.diagnostics, undefined, undefined, true);
      throw e;
    }
    if (o.json) io.stdout(JSON.stringify({ ok: true, ...result }, null, 2) + "\n");
    else {
      const rows = result.certs.map((c) => [c.host, c.commonName, c.notAfter.slice(0, 10), String(c.daysLeft) + (c.expiring ? " !" : ""), c.sha256]);
      const widths = [0, 1, 2, 3].map((i) => Math.max(...[["HOST", "CN", "NOT AFTER", "DAYS LEFT"][i]!, ...rows.map((r) => r[i]!)].map((s) => s.length)));
      const line = (r: string[]) => r.map((cell, i) => (i < 4 ? cell.padEnd(widths[i]!) : cell)).join("  ");
      io.stdout([line(["HOST", "CN", "NOT AFTER", "DAYS LEFT", "SHA-256"]), ...rows.map(line)].join("\n") + "\n");
      if (result.retired.length && !o.quiet) io.stdout(`${result.retired.length} retired certificate(s) in ${secretsDir}/retired (refused by the storage nodes)\n`);
      if (result.rotation && !o.quiet) io.stdout(`a CA rotation is in progress: stage ${result.rotation.stage} of 3 is built; deploy it everywhere, then run f3s-gen pki rotate-ca <spec>\n`);
    }
    return EXIT.ok;
  }
  if (sub !== "renew" && sub !== "revoke" && sub !== "rotate-ca") throw new UsageError(`pki needs status, renew, revoke or rotate-ca`);
  const [specName, ...names] = rest;
  if (!specName) throw new UsageError(`pki ${sub} needs the spec`);
  const spec = specFile(specName, io);
  const checked = checkSpecFile(spec.path, spec.name, io.env);
  if (!checked.model) return report(io, o, checked.diagnostics, specSource(checked.loaded), undefined, true);
  const model = checked.model;
  // --dry-run reads the secrets and works everything out in memory: no lock, nothing written.
  const dryRun = p.flags.has("--dry-run");
  const locked = <T>(fn: () => Promise<T>) => (dryRun ? fn() : withLocks([secretsDir], fn));
  const planned = (changes: string[]) => `dry run: nothing was written; this would:\n${changes.map((c) => `  ${c}`).join("\n")}\n`;
  if (sub === "rotate-ca") {
    if (names.length || p.flags.has("--all")) throw new UsageError("pki rotate-ca takes only the spec");
    if (p.flags.has("--immediate")) {
      const r = await locked(async () => (await manage()).rotateCa(secretsDir, model, io.now(), dryRun));
      if (r.diagnostics.length) return report(io, o, r.diagnostics, undefined, undefined, true);
      if (o.json) io.stdout(JSON.stringify({ ok: true, dryRun, changes: r.changes }, null, 2) + "\n");
      else if (dryRun) io.stdout(planned(r.changes));
      else if (!o.quiet) io.stdout(r.changes.join("\n") + "\nnow rebuild and deploy every host: storage nodes first, then each client (its mount fails until its tarball is deployed)\n");
      return EXIT.ok;
    }
    const r = await locked(async () => (await import("./pki/rotation.js")).advanceRotation(secretsDir, model, io.now(), dryRun));
    if (r.diagnostics.length) return report(io, o, r.diagnostics, undefined, undefined, true);
    const next = r.step === "finish" ? "build and deploy every host: the rotation is complete" : `build and deploy every host (storage nodes first; no client loses its mount), then run f3s-gen pki rotate-ca ${spec.name} again`;
    if (o.json) io.stdout(JSON.stringify({ ok: true, dryRun, stage: r.step, changes: r.changes, next }, null, 2) + "\n");
    else if (dryRun) io.stdout(planned(r.changes));
    else if (!o.quiet) io.stdout(r.changes.join("\n") + `\nnow ${next}\n`);
    return EXIT.ok;
  }
  let targets: ReissueTarget[];
  if (sub === "revoke") {
    if (names.length !== 1 || p.flags.has("--all")) throw new UsageError("pki revoke takes one client name");
    if (names[0] === "server") throw new UsageError(`the server certificate is not revoked but replaced: f3s-gen pki renew ${spec.name} server`);
    targets = [{ kind: "client", name: names[0]! }];
  } else if (p.flags.has("--all")) {
    if (names.length) throw new UsageError("pki renew takes names or --all, not both");
    targets = [{ kind: "server" }, ...model.clients.map((c) => ({ kind: "client" as const, name: c.name }))];
  } else {
    if (!names.length) throw new UsageError("pki renew needs NAME..., server or --all");
    targets = names.map((n) => (n === "server" ? { kind: "server" as const } : { kind: "client" as const, name: n }));
  }
  const r = await locked(async () => (await manage()).reissue(secretsDir, model, targets, sub === "revoke" ? "revoked" : "renewed", io.now(), dryRun));
  if (r.diagnostics.length) return report(io, o, r.diagnostics, undefined, undefined, true);
  if (o.json) io.stdout(JSON.stringify({ ok: true, dryRun, changes: r.changes }, null, 2) + "\n");
  else if (dryRun) io.stdout(planned(r.changes));
  else if (!o.quiet) {
    const hosts = targets.map((t) => (t.kind === "server" ? model.storageNodes.map((n) => n.name).join(", ") : t.name));
    io.stdout(r.changes.join("\n") + `\nnow rebuild and deploy the storage nodes and ${[...new Set(hosts)].join(", ")}; f3s-activate restarts stunnel on the storage nodes\n`);
  }
  return EXIT.ok;
}

/** --out, or `out` beside the spec (as the secrets); without a spec (show), the working directory's. */
function outDirOf(p: Parsed, io: Io, spec?: { path: string }): string {
  const given = p.flags.get("--out") as string | undefined;
  return given !== undefined ? resolve(io.cwd, given) : resolve(spec ? dirname(spec.path) : io.cwd, "out");
}

async function runDiff(p: Parsed, io: Io, o: { json: boolean; quiet: boolean }): Promise<number> {
  const spec = specArg(p, "diff", io);
  const outDir = outDirOf(p, io, spec);
  const planned = await plan({ specPath: spec.path, specName: spec.name, secretsDir: secretsDirOf(p, io, spec), now: io.now(), env: io.env });
  if (!planned.hosts) return report(io, o, planned.diagnostics, specSource(planned.checked.loaded), undefined, true);
  const [{ diffHosts }, { readOutDir }] = await Promise.all([inspectDiff(), inspectShow()]);
  const hosts = diffHosts(readOutDir(outDir), planned.hosts, [planned.checked.model!.vip.password], planned.freshCerts);
  const changed = hosts.filter((h) => h.status !== "unchanged");
  // Hosts no longer in the spec: the build writes (or keeps) their decommission tarball.
  const retired = retiredHosts(outDir, planned.checked.model!, [KEYS_NAME]).map((r) => ({ name: r.name, tarball: join(outDir, RETIRED_DIR, `${r.name}.tar.gz`), new: !existsSync(join(outDir, RETIRED_DIR, `${r.name}.tar.gz`)) }));
  if (o.json) {
    io.stdout(JSON.stringify({ ok: true, changed: changed.length > 0, out: outDir, secretChanges: planned.secretChanges, hosts: changed, retired }, null, 2) + "\n");
  } else {
    printDiagnostics(io, planned.diagnostics, specSource(planned.checked.loaded), o.quiet);
    const lines: string[] = [];
    for (const h of changed) {
      if (h.status === "added") lines.push(`host ${h.host}: added (${h.files.length} files)`);
      else if (h.status === "removed") {
        const r = retired.find((x) => x.name === h.host);
        lines.push(`host ${h.host}: removed (${h.files.length} files)${r ? `; the build writes its decommission tarball ${r.tarball} (f3s-decommission undoes what f3s-gen installed)` : ""}`);
      }
      else lines.push(`host ${h.host}: ${h.files.length} file(s) changed`);
      if (h.status !== "changed") continue;
      for (const f of h.files) {
        lines.push(`  ${f.kind} /${f.path}${f.note ? ` (${f.note})` : ""}`);
        if (f.patch) lines.push(...f.patch.trimEnd().split("\n").filter((l) => !/^=+$/.test(l)).map((l) => `    ${l}`));
      }
    }
    for (const c of planned.secretChanges) lines.push(`secrets: would ${c}`);
    // On a terminal, as git does: removed lines red, added green, hunk headers cyan.
    const paint = useColor(io)
      ? (l: string) => (/^ {4}\+/.test(l) && !/^ {4}\+\+\+/.test(l) ? `\x1b[32m${l}\x1b[0m` : /^ {4}-/.test(l) && !/^ {4}---/.test(l) ? `\x1b[31m${l}\x1b[0m` : /^ {4}@@/.test(l) ? `\x1b[36m${l}\x1b[0m` : l)
      : (l: string) => l;
    if (!o.quiet) io.stdout((lines.length ? lines.map(paint).join("\n") : `no changes against ${outDir}`) + "\n");
  }
  return changed.length ? EXIT.changes : EXIT.ok;
}

async function runShow(p: Parsed, io: Io, o: { json: boolean }): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError("show takes one host name");
  const [{ oldSecretsIn, redact }, { readOutHost, showHost, isPrivateFile }] = await Promise.all([inspectDiff(), inspectShow()]);
  const host = p.positional[0]!;
  const outDir = outDirOf(p, io);
  // Every failure says so on stderr and, with --json, as the one error shape on stdout.
  const failure = (code: string, message: string) => {
    if (o.json) jsonFailure(io, { operation: "show", code, message });
    io.stderr(`f3s-gen: ${message}\n`);
    return EXIT.invalid;
  };
  let files = readOutHost(outDir, host);
  let tarball = join(outDir, `${host}.tar.gz`);
  if (!files) {
    // A host removed from the spec: its decommission tarball.
    const retired = readOutHost(join(outDir, RETIRED_DIR), host);
    if (retired) {
      files = retired;
      tarball = join(outDir, RETIRED_DIR, `${host}.tar.gz`);
      if (!o.json) io.stderr(`f3s-gen: ${host} is retired (no longer in the spec): its decommission tarball ${tarball}\n`);
    }
  }
  if (!files) {
    const hosts = existsSync(outDir) ? readdirSync(outDir).filter((n) => n.endsWith(".tar.gz")).map((n) => n.slice(0, -".tar.gz".length)) : [];
    const near = closest(host, hosts);
    return failure("not-found", `no ${host}.tar.gz in ${outDir}${near ? `; did you mean ${near}?` : hosts.length ? ` (hosts: ${hosts.join(", ")})` : "; build first"}`);
  }
  const cat = p.flags.get("--cat") as string | undefined;
  if (cat !== undefined) {
    const want = cat.replace(/^\//, "");
    const file = files.find((f) => f.path === want);
    if (!file) {
      // A unit name written as the mountpoint (data-nfs-k3svolumes.mount) or a typo: the nearest path.
      const near = closest(want, files.map((f) => f.path)) ?? files.find((f) => f.path.replace(/\\x2d/g, "-") === want)?.path;
      return failure("not-found", `${basename(tarball)} has no file ${cat}${near ? `; did you mean /${near}?` : ""}`);
    }
    if (isPrivateFile(host, file)) return failure("private", `${cat} is private key material and is never printed`);
    // rc.conf.d/netif carries the CARP password: it is masked here as in every other output.
    io.stdout(redact(file.content.toString("utf8"), oldSecretsIn(file)));
    return EXIT.ok;
  }
  // Paths as installed (and as MANIFEST has them): absolute.
  const shown = showHost(host, files).map((f) => ({ ...f, path: `/${f.path}` }));
  if (o.json) io.stdout(JSON.stringify({ ok: true, host, tarball, files: shown }, null, 2) + "\n");
  else io.stdout(shown.map((f) => `${f.mode} ${String(f.size).padStart(6)} ${f.sha256 ?? "-".padEnd(64)} ${f.path}`).join("\n") + "\n");
  return EXIT.ok;
}
