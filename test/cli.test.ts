// The command line: exit codes, what is written (and not), --json, help and version.
import { describe, expect, it } from "vitest";
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { runMain, EXIT, type Io } from "../src/cli.js";
import { packageRoot } from "../src/paths.js";
import { hasTool, privateSecrets, tempDir } from "./support.js";

const exampleSpec = join(packageRoot, "examples/f3s.example.yaml");

async function run(args: string[], cwd = tempDir(), env: NodeJS.ProcessEnv = {}) {
  let stdout = "";
  let stderr = "";
  const io: Io = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false, env, cwd, now: () => new Date() };
  const code = await runMain(args, io);
  return { code, stdout, stderr, cwd };
}

describe("f3s-gen", () => {
  it("prints help and version", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(EXIT.ok);
    expect(help.stdout).toContain("f3s-gen build <spec>");
    const version = await run(["--version"]);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")).version);
  });

  it("exits 2 on usage errors", async () => {
    for (const args of [[], ["frobnicate"], ["build"], ["build", "a", "b"], ["build", exampleSpec, "--out"], ["validate", exampleSpec, "--colour"], ["build", "/no/such/spec.yaml"]]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(EXIT.usage);
      expect(r.stderr).toMatch(/f3s-gen: /);
    }
  });

  it("validates the example with exit 0, and with --strict fails on its warning", async () => {
    expect((await run(["validate", exampleSpec])).code).toBe(EXIT.ok);
    const strict = await run(["validate", exampleSpec, "--strict"]);
    expect(strict.code).toBe(EXIT.invalid);
    expect(strict.stderr).toContain("CARP password");
  });

  it("builds with exit 0 and writes nothing for an invalid spec (exit 1, located errors)", async () => {
    const cwd = tempDir();
    const bad = join(cwd, "bad.yaml");
    writeFileSync(bad, readFileSync(exampleSpec, "utf8").replace("vhid: 1", "vhid: 0"));
    const r = await run(["build", bad], cwd);
    expect(r.code).toBe(EXIT.invalid);
    const line = lineOf(readFileSync(exampleSpec, "utf8"), "vhid: 1");
    expect(r.stderr).toMatch(new RegExp(`bad\\.yaml:${line}:11: error: /storage/vip/vhid: 0 is out of range`));
    expect(readdirSync(cwd)).toEqual(["bad.yaml"]);
  });

  it("--strict build fails before writing anything", async () => {
    const r = await run(["build", exampleSpec, "--strict"]);
    expect(r.code).toBe(EXIT.invalid);
    expect(readdirSync(r.cwd)).toEqual([]);
  });

  it("builds into --out with --secrets and reports hosts as --json", async () => {
    const cwd = tempDir();
    const secrets = privateSecrets("example");
    const r = await run(["build", join(packageRoot, "fixtures/valid/example/spec.yaml"), "--out", "dist-out", "--secrets", secrets, "--json"], cwd);
    expect(r.code).toBe(EXIT.ok);
    const json = JSON.parse(r.stdout);
    expect(json.ok).toBe(true);
    expect(json.hosts.map((h: { name: string }) => h.name)).toEqual(["earth", "f0", "f1", "f2", "r0", "r1", "r2"]);
    expect(json.diagnostics[0]).toMatchObject({ severity: "warning", code: "weak-carp-password", line: lineOf(readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8"), "password:"), column: 15 });
    expect(existsSync(join(cwd, "dist-out/f0.tar.gz"))).toBe(true);
  });

  it("validate --json has a documented shape", async () => {
    const r = await run(["validate", exampleSpec, "--json"]);
    expect(Object.keys(JSON.parse(r.stdout))).toEqual(["ok", "valid", "diagnostics"]);
    expect(Object.keys(JSON.parse(r.stdout).diagnostics[0])).toEqual(["severity", "code", "file", "line", "column", "pointer", "message", "hint"]);
  });

  it("--json: every failure of every command has one shape, { ok: false, error: { code, message }, diagnostics }", async () => {
    const cwd = tempDir();
    const bad = join(cwd, "bad.yaml");
    writeFileSync(bad, readFileSync(exampleSpec, "utf8").replace("vhid: 1", "vhid: 0"));
    const secrets = privateSecrets("example");
    writeFileSync(join(cwd, "junk.tar.gz"), "junk");
    const failures: string[][] = [
      ["validate", bad],
      ["build", bad],
      ["diff", bad],
      ["build", exampleSpec, "--out", join(cwd, "junk.tar.gz")],
      ["show", "nosuchhost", "--out", cwd],
      ["show", "junk", "--out", cwd],
      ["pki", "status", "--secrets", join(cwd, "none")],
      ["pki", "renew", exampleSpec, "nosuch", "--secrets", secrets],
      ["pki", "revoke", exampleSpec, "server", "--secrets", secrets],
      ["buidl", exampleSpec],
      ["validate", join(cwd, "none.yaml")],
    ];
    for (const args of failures) {
      const r = await run([...args, "--json"], cwd);
      expect(r.code, args.join(" ")).not.toBe(EXIT.ok);
      const json = JSON.parse(r.stdout);
      expect(json.ok, args.join(" ")).toBe(false);
      expect(Object.keys(json.error).sort(), args.join(" ")).toEqual(expect.arrayContaining(["code", "message"]));
      expect(typeof json.error.message, args.join(" ")).toBe("string");
      expect(Array.isArray(json.diagnostics), args.join(" ")).toBe(true);
    }
  });

  it("init writes a spec for users (schema line, no secret in it), its password file and a .gitignore; it builds clean and never overwrites", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, ".gitignore"), "node_modules/\nout/\n");
    expect((await run(["init", "mine.yaml"], cwd)).code).toBe(EXIT.ok);
    const text = readFileSync(join(cwd, "mine.yaml"), "utf8");
    expect(text.split("\n")[0]).toBe(`# yaml-language-server: $schema=${join(packageRoot, "schema/f3s.schema.json")}`);
    expect(text).not.toMatch(/For the team|CONTRACT|testpass|lan\.buetow\.org/);
    expect(text).toMatch(/^domain: home\.arpa/m);
    // The spec holds no secret: the password is in mine.carp-password, 0600, which git ignores.
    expect(text).toMatch(/^ +passwordFile: mine\.carp-password /m);
    expect(text).not.toMatch(/^ +password:/m);
    expect(statSync(join(cwd, "mine.carp-password")).mode & 0o777).toBe(0o600);
    const password = (name: string) => readFileSync(join(cwd, name), "utf8").trim();
    expect(password("mine.carp-password")).toMatch(/^[A-Za-z0-9]{16}$/);
    expect(readFileSync(join(cwd, ".gitignore"), "utf8")).toBe("node_modules/\nout/\n# f3s-gen: private keys, built tarballs (they hold keys), the CARP password\nsecrets/\n*.carp-password\n");
    // The example's body, key for key: only the header, domain, password, rootAccess, exportDatasets and key type differ.
    const strip = (t: string) => t.split("\n").filter((l) => !l.startsWith("#") && !/^domain:|password:|passwordFile:|rootAccess:|exportDatasets:|keyBits:|keyType:/.test(l)).join("\n");
    expect(strip(text)).toBe(strip(readFileSync(exampleSpec, "utf8")));
    // Two inits never share a password; the .gitignore is not extended twice.
    await run(["init", "yours.yaml"], cwd);
    expect(password("yours.carp-password")).not.toBe(password("mine.carp-password"));
    expect(readFileSync(join(cwd, ".gitignore"), "utf8").match(/secrets\//g)).toHaveLength(1);
    const built = await run(["build", "mine.yaml", "--json"], cwd);
    expect(built.code, built.stderr).toBe(EXIT.ok);
    expect(JSON.parse(built.stdout).diagnostics).toEqual([]);
    expect((await run(["init", "mine.yaml"], cwd)).code).toBe(EXIT.invalid);
    // git itself agrees: nothing secret would be committed.
    if (hasTool("git")) {
      spawnSync("git", ["init", "-q"], { cwd });
      const status = spawnSync("git", ["status", "--porcelain", "--untracked-files=all"], { cwd, encoding: "utf8" }).stdout;
      expect(status).toMatch(/mine\.yaml/);
      expect(status).not.toMatch(/carp-password|secrets\/|out\//);
    }
  });

  it("refuses secrets inside out/ (which every build replaces), before writing anything", async () => {
    for (const [out, secrets] of [["build", "build/secrets"], ["state", "state"], ["keep/out", "keep"]] as const) {
      const cwd = tempDir();
      const r = await run(["build", exampleSpec, "--out", out, "--secrets", secrets], cwd);
      expect(r.code, `${out} ${secrets}`).toBe(EXIT.invalid);
      expect(r.stderr).toContain("overlap");
      expect(readdirSync(cwd)).toEqual([]);
    }
  });

  it("sees the overlap through a symbolic link too (the secrets would be deleted with out/)", async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, "out"));
    symlinkSync(join(cwd, "out"), join(cwd, "link"));
    const r = await run(["build", exampleSpec, "--out", "out", "--secrets", "link/secrets"], cwd);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toContain("overlap");
    expect(readdirSync(join(cwd, "out"))).toEqual([]);
  });

  it("refuses to replace an --out directory it did not write", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "precious.txt"), "keep me");
    const r = await run(["build", exampleSpec, "--out", ".", "--secrets", privateSecrets("example")], cwd);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr).toContain("refusing to replace");
    expect(readFileSync(join(cwd, "precious.txt"), "utf8")).toBe("keep me");
  });

  it("shows key generation progress on a terminal only", async () => {
    const cwd = tempDir();
    // A copy: out/ and secrets/ are made beside the spec.
    const spec = join(cwd, "spec.yaml");
    cpSync(join(packageRoot, "fixtures/valid/other/spec.yaml"), spec);
    let stderr = "";
    const io: Io = { stdout: () => {}, stderr: (s) => (stderr += s), isTTY: true, env: {}, cwd, now: () => new Date() };
    expect(await runMain(["build", spec], io)).toBe(EXIT.ok);
    expect(stderr).toMatch(/\rgenerating keys: 1\/7/);
    // The line is cleared once the keys are done: it does not stay on screen.
    expect(stderr).toMatch(/generating keys: 6\/7\r\x1b\[K/);
    const quiet = await run(["build", spec, "--json", "--out", join(cwd, "out2"), "--secrets", join(cwd, "secrets2")]);
    expect(quiet.stderr).not.toMatch(/generating keys/);
  });

  it("colours only on a terminal and never with NO_COLOR", async () => {
    const io = (isTTY: boolean, env: NodeJS.ProcessEnv) => {
      let stderr = "";
      return { io: { stdout: () => {}, stderr: (s: string) => (stderr += s), isTTY, env, cwd: tempDir(), now: () => new Date() } as Io, out: () => stderr };
    };
    const tty = io(true, {});
    await runMain(["validate", exampleSpec], tty.io);
    expect(tty.out()).toContain("\x1b[");
    const noColor = io(true, { NO_COLOR: "1" });
    await runMain(["validate", exampleSpec], noColor.io);
    expect(noColor.out()).not.toContain("\x1b[");
  });
});

describe("the README, as a new user follows it", () => {
  it("builds the example with the quickstart's own command, then the user's own cluster in the same directory, without an error", async () => {
    const readme = readFileSync(join(packageRoot, "README.md"), "utf8");
    const quickstart = /^npm ci && npx f3s-gen (build .*)$/m.exec(readme)![1]!.split(" ");
    const own = [...readme.matchAll(/^f3s-gen ((?:init|validate|build) my-cluster\.yaml)/gm)].map((m) => m[1]!.split(" "));
    expect(own.map((a) => a[0])).toEqual(["init", "validate", "build"]);
    const cwd = tempDir();
    cpSync(join(packageRoot, "examples"), join(cwd, "examples"), { recursive: true });
    const first = await run(quickstart, cwd);
    expect(first.code, first.stderr).toBe(EXIT.ok);
    for (const args of own) {
      const r = await run(args, cwd);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(EXIT.ok);
      expect(r.stderr, args.join(" ")).toBe("");
    }
    expect(readdirSync(join(cwd, "out")).filter((n) => n.endsWith(".tar.gz")).length).toBeGreaterThan(3);
  }, 60_000);
});

/** 1-based line of the first line containing `text` (the example's comments may change). */
function lineOf(source: string, text: string): number {
  return source.split("\n").findIndex((l) => l.includes(text)) + 1;
}

describe("help, completion and the smaller points", () => {
  it("each command has its own --help (and `help <command>`), with only its options", async () => {
    const build = await run(["build", "--help"]);
    expect(build.code).toBe(EXIT.ok);
    expect(build.stdout).toMatch(/^Usage:\n  f3s-gen build <spec>/);
    expect(build.stdout).toContain("--strict");
    expect(build.stdout).not.toContain("f3s-gen show");
    const pki = await run(["help", "pki"]);
    expect(pki.stdout).toMatch(/f3s-gen pki status[\s\S]*f3s-gen pki rotate-ca/);
    expect(pki.stdout).not.toContain("--strict");
    expect((await run(["--help"])).stdout).toContain("f3s-gen completion bash|zsh|fish");
  });

  it.each(["bash", "zsh", "fish"])("completion %s prints a script that names every command", async (shell) => {
    const r = await run(["completion", shell]);
    expect(r.code).toBe(EXIT.ok);
    for (const c of ["build", "validate", "diff", "show", "init", "pki"]) expect(r.stdout).toContain(c);
    if (shell === "bash") {
      const file = join(tempDir(), "c.bash");
      writeFileSync(file, r.stdout);
      expect(spawnSync("bash", ["-n", file]).status).toBe(0);
      if (spawnSync("shellcheck", ["--version"]).status === 0) expect(spawnSync("shellcheck", ["-s", "bash", file], { encoding: "utf8" }).stdout).toBe("");
    }
  });

  it("each command's --help has examples; the read-only ones run as written in a directory with cluster.yaml", async () => {
    const cwd = tempDir();
    cpSync(exampleSpec, join(cwd, "cluster.yaml"));
    cpSync(privateSecrets("example"), join(cwd, "secrets"), { recursive: true });
    expect((await run(["build", "cluster.yaml", "--quiet"], cwd)).code).toBe(EXIT.ok);
    for (const command of ["build", "validate", "diff", "show", "init", "pki", "completion"]) {
      const help = (await run([command, "--help"])).stdout;
      const examples = help.slice(help.indexOf("Examples:\n") + 10, help.indexOf("\nExit codes:")).trim().split("\n").map((l) => l.trim().replace(/ +#.*$/, ""));
      expect(help, command).toContain("Examples:");
      for (const example of examples.filter((e) => /^f3s-gen (validate|diff|show|pki status)\b/.test(e) && !e.includes("|") && !e.includes("--strict"))) {
        const named = example.replace("<storage-node>", "f0").replace("<client>", "r0").replace("<host>", "r1");
        const r = await run(named.split(" ").slice(1), cwd);
        expect([EXIT.ok, EXIT.changes], `${example}: ${r.stderr}`).toContain(r.code);
      }
    }
  });

  it("completion of anything else is a usage error", async () => {
    expect((await run(["completion", "tcsh"])).code).toBe(EXIT.usage);
  });

  it("--strict says in its last line why it failed", async () => {
    const r = await run(["validate", exampleSpec, "--strict"]);
    expect(r.code).toBe(EXIT.invalid);
    expect(r.stderr.trimEnd().split("\n").at(-1)).toBe("f3s-gen: --strict: 2 warning(s) count as errors; nothing was written");
  });

  it("pki status takes the spec like the other pki commands", async () => {
    const r = await run(["pki", "status", exampleSpec, "--secrets", privateSecrets("example")]);
    expect(r.code, r.stderr).toBe(EXIT.ok);
  });

  it("diff is coloured on a terminal only", async () => {
    const cwd = tempDir();
    const secrets = privateSecrets("example");
    cpSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), join(cwd, "spec.yaml"));
    expect((await run(["build", "spec.yaml", "--secrets", secrets], cwd)).code).toBe(EXIT.ok);
    const spec = join(cwd, "changed.yaml");
    writeFileSync(spec, readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8").replace("tlsPort: 2323", "tlsPort: 2324"));
    let out = "";
    const io = (isTTY: boolean): Io => ({ stdout: (s) => (out += s), stderr: () => {}, isTTY, env: {}, cwd, now: () => new Date() });
    expect(await runMain(["diff", spec, "--secrets", secrets], io(true))).toBe(EXIT.changes);
    expect(out).toMatch(/\x1b\[32m {4}\+/);
    expect(out).toMatch(/\x1b\[31m {4}-/);
    out = "";
    await runMain(["diff", spec, "--secrets", secrets], io(false));
    expect(out).not.toContain("\x1b[");
  });
});
