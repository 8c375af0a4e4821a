// f3s-gen as an installed command, as the README installs it: `npm install -g .` from the clone
// (here into a private prefix), then the README's own-cluster commands run as written by a shell
// in a directory of the user's, and each shell's completion loaded from the installed command.
import { describe, expect, it, beforeAll } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { fixturesDir, privateSecrets, tempDir } from "./support.js";

const has = (tool: string, args = ["--version"]) => spawnSync(tool, args).status === 0;
const required = process.env.CI === "true";
let prefix = "";
let env: NodeJS.ProcessEnv = {};

/** `script` in `shell` with the installed f3s-gen first on PATH. */
function sh(shell: string, script: string, cwd: string) {
  return spawnSync(shell, ["-c", script], { cwd, encoding: "utf8", env, timeout: 120_000 });
}

describe("f3s-gen installed as the README says", () => {
  beforeAll(() => {
    prefix = tempDir("f3s-prefix-");
    // The README's `npm install -g .`, into a prefix of the test's own (a link to this clone: no network).
    const r = spawnSync("npm", ["install", "-g", ".", "--prefix", prefix, "--offline", "--no-audit", "--no-fund"], { cwd: packageRoot, encoding: "utf8", timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    env = { ...process.env, PATH: `${join(prefix, "bin")}:${process.env.PATH}`, HOME: tempDir("f3s-home-"), F3S_NO_CODE_CACHE: "1" };
  }, 300_000);

  it("the README's own-cluster commands run as written, from the user's own directory", () => {
    const readme = readFileSync(join(packageRoot, "README.md"), "utf8");
    const block = /For your own cluster,[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)![1]!;
    const lines = block.split("\n").filter((l) => l.trim() && !l.startsWith("npm install -g"));
    expect(lines.some((l) => l.startsWith("f3s-gen build my-cluster.yaml"))).toBe(true);
    // As written, except that the completion goes where this test may write, and ~ is the test's HOME.
    const script = ["set -e", ...lines.map((l) => l.replace("/etc/bash_completion.d/f3s-gen", "$HOME/f3s-gen.bash"))].join("\n");
    const r = sh("bash", script, tempDir());
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const dir = join(env.HOME!, "my-cluster");
    expect(readdirSync(join(dir, "out")).filter((n) => n.endsWith(".tar.gz")).length).toBeGreaterThan(3);
    expect(existsSync(join(dir, "my-cluster.carp-password"))).toBe(true);
    expect(readFileSync(join(env.HOME!, "f3s-gen.bash"), "utf8")).toContain("complete -F _f3s_gen f3s-gen");
    // Then the override example of docs/overrides.md on one host (and a role), with its file beside the spec.
    const overrides = /```yaml\n([\s\S]*?)```/.exec(readFileSync(join(packageRoot, "docs/overrides.md"), "utf8"))![1]!;
    mkdirSync(join(dir, "files"));
    writeFileSync(join(dir, "files/hello.sh"), "#!/bin/sh\necho hello\n");
    writeFileSync(join(dir, "my-cluster.yaml"), readFileSync(join(dir, "my-cluster.yaml"), "utf8") + "\n" + overrides);
    const rebuilt = sh("bash", "f3s-gen build my-cluster.yaml --quiet && f3s-gen show r0 && f3s-gen show f0 --cat /usr/local/etc/stunnel/stunnel.conf", dir);
    expect(rebuilt.status, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toMatch(/ \/usr\/local\/bin\/hello$/m);
    expect(rebuilt.stdout).toContain("ciphersuites = TLS_AES_256_GCM_SHA384");
  }, 300_000);

  describe("completion, per shell, against the installed command", () => {
    const cluster = () => {
      const dir = tempDir();
      const r = sh("bash", `f3s-gen build ${join(fixturesDir, "valid/example/spec.yaml")} --secrets ${privateSecrets("example")} --out out --quiet`, dir);
      expect(r.status, r.stderr).toBe(0);
      return dir;
    };

    it.skipIf(!has("bash"))("bash: commands, pki's sub-commands, show's hosts, and --cat the paths in that host's tarball", () => {
      const dir = cluster();
      const complete = (words: string[]) => {
        const script = `source <(f3s-gen completion bash); COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _f3s_gen; printf '%s\\n' "\${COMPREPLY[@]}"`;
        const r = sh("bash", script, dir);
        expect(r.status, r.stderr).toBe(0);
        return r.stdout.trim().split("\n");
      };
      expect(complete(["f3s-gen", "bu"])).toEqual(["build"]);
      expect(complete(["f3s-gen", "pki", "r"])).toEqual(["renew", "revoke", "rotate-ca"]);
      expect(complete(["f3s-gen", "show", "r"])).toEqual(["r0", "r1", "r2"]);
      const paths = complete(["f3s-gen", "show", "r0", "--cat", "/etc/systemd/system/data"]);
      expect(paths).toEqual(["/etc/systemd/system/data-nfs-k3svolumes.mount"]);
    });

    it.skipIf(!has("fish") && !required)("fish: the same, through `complete -C`", () => {
      const dir = cluster();
      const complete = (line: string) => {
        const r = sh("fish", `f3s-gen completion fish | source; complete -C '${line}'`, dir);
        expect(r.status, r.stderr).toBe(0);
        return r.stdout.trim().split("\n").map((l) => l.split("\t")[0]!);
      };
      expect(complete("f3s-gen pki r")).toEqual(["renew", "revoke", "rotate-ca"]);
      expect(complete("f3s-gen show r")).toEqual(["r0", "r1", "r2"]);
      expect(complete("f3s-gen show r0 --cat /etc/systemd/system/data")).toEqual(["/etc/systemd/system/data-nfs-k3svolumes.mount"]);
    });

    it.skipIf(!has("zsh") && !required)("zsh: the script parses, and compinit registers it for f3s-gen from the directory the help names", () => {
      const dir = tempDir();
      const fpath = join(dir, "functions");
      mkdirSync(fpath);
      const r = sh("zsh", `f3s-gen completion zsh > ${fpath}/_f3s-gen && zsh -n ${fpath}/_f3s-gen && zsh -fc 'fpath=(${fpath} $fpath); autoload -Uz compinit; compinit -u -d ${dir}/zcompdump; print -r -- \${_comps[f3s-gen]}'`, dir);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe("_f3s-gen");
    });
  });
});
