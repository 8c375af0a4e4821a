// Every secrets-changing command killed (SIGKILL) at each of its writes in turn: a build that
// issues and retires, pki renew, pki revoke, pki rotate-ca (each stage, and --immediate). The real CLI runs in a child process
// with F3S_FAULT_KILL_AT=N (src/pki/transaction.ts), which kills it right before its Nth write to
// the secrets directory. After every kill the directory is either exactly as before (nothing was
// committed) or, once the next command has finished the committed change, exactly the new state;
// and the next command works. ECDSA keys keep the ~70 killed runs fast.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { recoverSecrets, TXN_DIR } from "../src/pki/transaction.js";
import { listFiles, tempDir } from "./support.js";

const cliPath = join(packageRoot, "bin/f3s-gen.cjs");
const example = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8").replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256");
const changed = example
  .replace(/  - name: r2\n(.*\n){4}/, "")
  .replace("members:", "  - name: r3\n    mounts:\n      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs/k3svolumes\n\nmembers:");

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [cliPath, ...args, "--quiet"], { encoding: "utf8", env: { ...process.env, ...env } });
}

/** Every file, byte for byte (the .txn staging area excluded: the next command drops or finishes it). */
const bytes = (dir: string) => new Map(listFiles(dir).filter((f) => !f.startsWith(`${TXN_DIR}/`)).map((f) => [f, readFileSync(join(dir, f)).toString("base64")]));

/** What a state is, independent of the random keys a run makes: the file names and what the index records. */
function shape(dir: string) {
  const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
  return {
    files: listFiles(dir).map((f) => f.replace(/-[0-9a-f]{32}(\/|$)/, "-SERIAL$1")).sort(),
    clients: index.clients,
    zfsKeys: index.zfsKeys,
    retired: index.retired.map((r: { name: string; kind?: string; reason: string }) => `${r.kind}:${r.name}:${r.reason}`).sort(),
  };
}

/** `stagesBefore`: how many stages of a CA rotation the directory went through before the command. */
const scenarios: { name: string; args: (spec: string, secrets: string, out: string) => string[]; stagesBefore?: number }[] = [
  { name: "build issuing r3 and retiring r2", args: (_spec, secrets, out) => ["build", specFile(changed), "--secrets", secrets, "--out", out] },
  { name: "pki renew server", args: (spec, secrets) => ["pki", "renew", spec, "server", "--secrets", secrets] },
  { name: "pki revoke r1", args: (spec, secrets) => ["pki", "revoke", spec, "r1", "--secrets", secrets] },
  { name: "pki rotate-ca --immediate", args: (spec, secrets) => ["pki", "rotate-ca", spec, "--immediate", "--secrets", secrets] },
  { name: "pki rotate-ca, stage 1 (trust)", args: (spec, secrets) => ["pki", "rotate-ca", spec, "--secrets", secrets] },
  { name: "pki rotate-ca, stage 2 (reissue)", args: (spec, secrets) => ["pki", "rotate-ca", spec, "--secrets", secrets], stagesBefore: 1 },
  { name: "pki rotate-ca, stage 3 (finish)", args: (spec, secrets) => ["pki", "rotate-ca", spec, "--secrets", secrets], stagesBefore: 2 },
];

function specFile(text: string) {
  const file = join(tempDir(), "spec.yaml");
  writeFileSync(file, text);
  return file;
}

describe("secrets changes killed at every write", () => {
  it.each(scenarios)("$name: old state or, once finished, the new one; the next command works", { timeout: 600_000 }, ({ args, stagesBefore }) => {
    const base = tempDir();
    const spec = specFile(example);
    const seed = join(base, "secrets");
    expect(cli(["build", spec, "--secrets", seed, "--out", join(base, "out")]).status).toBe(0);
    for (let i = 0; i < (stagesBefore ?? 0); i++) expect(cli(["pki", "rotate-ca", spec, "--secrets", seed]).status).toBe(0);
    const old = bytes(seed);

    // The state a run that is not interrupted reaches.
    const clean = join(tempDir(), "secrets");
    cpSync(seed, clean, { recursive: true });
    const done = cli(args(spec, clean, join(tempDir(), "out")));
    expect(done.status, done.stderr).toBe(0);
    const target = shape(clean);

    let killed = 0;
    for (let n = 1; ; n++) {
      const dir = join(tempDir(), "secrets");
      cpSync(seed, dir, { recursive: true });
      const out = join(tempDir(), "out");
      const r = cli(args(spec, dir, out), { F3S_FAULT_KILL_AT: String(n) });
      if (r.signal !== "SIGKILL") {
        // Past the last write: the run completed.
        expect(r.status, r.stderr).toBe(0);
        expect(shape(dir)).toEqual(target);
        break;
      }
      killed++;
      const committed = existsSync(join(dir, TXN_DIR, "journal.json"));
      if (!committed) expect(bytes(dir), `kill at write ${n}: nothing committed, so nothing changed`).toEqual(old);
      // What the next command that holds the lock does first.
      recoverSecrets(dir);
      expect(shape(dir), `kill at write ${n}`).toEqual(committed ? target : shape(seed));
      // And the next command works: a build with the spec the directory now serves.
      const [command, specArg] = args(spec, dir, out);
      const next = cli(["build", command === "build" ? specArg! : spec, "--secrets", dir, "--out", join(tempDir(), "out")]);
      expect(next.status, `kill at write ${n}: ${next.stderr}`).toBe(0);
    }
    expect(killed).toBeGreaterThan(3);
  });

  it("a pending change is finished by the next build, and read-only commands say so instead of reading half a change", () => {
    const base = tempDir();
    const spec = specFile(example);
    const dir = join(base, "secrets");
    expect(cli(["build", spec, "--secrets", dir, "--out", join(base, "out")]).status).toBe(0);
    // Kill pki renew right after its commit point: the journal is there, nothing applied yet.
    let n = 1;
    for (; n < 50; n++) {
      const trial = join(tempDir(), "secrets");
      cpSync(dir, trial, { recursive: true });
      cli(["pki", "renew", spec, "r0", "--secrets", trial], { F3S_FAULT_KILL_AT: String(n) });
      if (existsSync(join(trial, TXN_DIR, "journal.json"))) {
        const status = cli(["pki", "status", "--secrets", trial]);
        expect(status.status).toBe(1);
        expect(status.stderr).toContain(`${join(trial, TXN_DIR, "journal.json")}:1:1: error:`);
        expect(status.stderr).toMatch(/interrupted after it was committed.*\n(.*\n)*\s+hint: run f3s-gen build/);
        const build = spawnSync(process.execPath, [cliPath, "build", spec, "--secrets", trial, "--out", join(tempDir(), "out")], { encoding: "utf8" });
        expect(build.status, build.stderr).toBe(0);
        expect(build.stdout).toContain("finished a change that was interrupted after it was committed");
        expect(cli(["pki", "status", "--secrets", trial]).status).toBe(0);
        return;
      }
    }
    throw new Error("no kill point after the commit");
  });
});
