// The error corpus: every broken spec in fixtures/invalid/ exits 1 with exactly its golden
// diagnostics (file:line:col, pointer, message, hint) and writes nothing. Goldens change only with
// F3S_UPDATE_GOLDEN=1 (npm run test:update).
import { describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain, type Io } from "../src/cli.js";
import { fixturesDir, tempDir } from "./support.js";
import { MAX_SPEC_BYTES } from "../src/spec/load.js";

const UPDATE = process.env.F3S_UPDATE_GOLDEN === "1";
const corpus = join(fixturesDir, "invalid");
const cases = readdirSync(corpus).filter((f) => f.endsWith(".yaml")).map((f) => f.slice(0, -5)).sort();

async function cli(args: string[], cwd: string) {
  let stdout = "";
  let stderr = "";
  const io: Io = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false, env: {}, cwd, now: () => new Date() };
  return { code: await runMain(args, io), stdout, stderr };
}

/** Runs one case from a directory holding `<name>.yaml`; checks exit code, goldens and no writes. */
async function check(name: string, dir: string) {
  const validate = await cli(["validate", `${name}.yaml`], dir);
  expect(validate.code, validate.stderr).toBe(1);
  const json = await cli(["validate", `${name}.yaml`, "--json"], dir);
  const actual = { text: validate.stderr, json: JSON.stringify(JSON.parse(json.stdout).diagnostics, null, 2) + "\n" };
  const golden = { text: join(corpus, `${name}.expected.txt`), json: join(corpus, `${name}.expected.json`) };
  if (UPDATE) {
    writeFileSync(golden.text, actual.text);
    writeFileSync(golden.json, actual.json);
  }
  expect(actual.text).toBe(readFileSync(golden.text, "utf8"));
  expect(actual.json).toBe(readFileSync(golden.json, "utf8"));
  for (const d of JSON.parse(json.stdout).diagnostics.filter((d: { severity: string }) => d.severity === "error")) {
    expect(d.file).toBe(`${name}.yaml`);
    expect(d.line).toBeGreaterThan(0);
    expect(d.hint, d.message).toBeTruthy();
  }
  // build writes nothing: no out/, no secrets/.
  const work = tempDir();
  writeFileSync(join(work, `${name}.yaml`), readFileSync(join(dir, `${name}.yaml`)));
  const build = await cli(["build", `${name}.yaml`], work);
  expect(build.code).toBe(1);
  expect(readdirSync(work)).toEqual([`${name}.yaml`]);
}

describe("the error corpus", () => {
  it("has at least 40 cases, each with its goldens", () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    if (!UPDATE) for (const c of cases) expect(existsSync(join(corpus, `${c}.expected.txt`)), c).toBe(true);
  });

  it.each(cases)("%s", async (name) => {
    await check(name, corpus);
  });

  it("huge-file (generated: a spec over the size limit is not parsed)", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "huge-file.yaml"), "# padding\n".repeat(Math.ceil((MAX_SPEC_BYTES + 1) / 10)));
    await check("huge-file", dir);
  });

  it("never shows the CARP password, not even in a source excerpt", () => {
    let excerpts = 0;
    for (const c of cases) {
      const text = readFileSync(join(corpus, `${c}.expected.txt`), "utf8") + readFileSync(join(corpus, `${c}.expected.json`), "utf8");
      for (const secret of ["testpass", "abcdefghijklmnopqrst", "test pass", "test`id`"]) expect(text.includes(secret), `${c}: ${secret}`).toBe(false);
      excerpts += (text.match(/\|\s+password: \*+/g) ?? []).length;
    }
    expect(excerpts).toBeGreaterThan(10);
  });
});
