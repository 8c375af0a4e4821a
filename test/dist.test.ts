// The built CLI (dist/) runs the precompiled templates and schema validator, which the other tests
// (running src/) do not: it must produce exactly the same tarballs and diagnostics.
import { describe, expect, it } from "vitest";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { buildCase, fixturesDir, privateSecrets, tempDir, validCases } from "./support.js";
import { packageRoot } from "../src/paths.js";
import { readTemplateSources, templatesHash } from "../src/render/sources.js";
import { createHash } from "node:crypto";

const dist = join(packageRoot, "dist");
const built = existsSync(join(dist, "cli.js"));
const require = createRequire(import.meta.url);

describe.skipIf(!built)("the built CLI", () => {
  it("carries precompiled templates and a schema validator for exactly the current sources", () => {
    expect(require(join(dist, "render/templates.cjs")).hash).toBe(templatesHash(readTemplateSources(join(packageRoot, "templates"))));
    const schemaSha = createHash("sha256").update(readFileSync(join(packageRoot, "schema/f3s.schema.json"))).digest("hex");
    expect(require(join(dist, "spec/schema-validator.cjs")).schemaSha256).toBe(schemaSha);
  });

  it.each(validCases)("builds %s into the same bytes as the tested pipeline", async (c) => {
    const secretsDir = privateSecrets(c);
    const reference = await buildCase(c, { secretsDir });
    const out = join(tempDir(), "out");
    const r = spawnSync(process.execPath, [join(packageRoot, "bin/f3s-gen.cjs"), "build", join(fixturesDir, "valid", c, "spec.yaml"), "--out", out, "--secrets", secretsDir, "--quiet"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const names = readdirSync(reference.outDir).filter((n) => n.endsWith(".tar.gz")).sort();
    expect(readdirSync(out).filter((n) => n.endsWith(".tar.gz")).sort()).toEqual(names);
    for (const n of names) expect(readFileSync(join(out, n)).equals(readFileSync(join(reference.outDir, n))), n).toBe(true);
  });

  it("reports the error corpus exactly as the goldens say", () => {
    const corpus = join(fixturesDir, "invalid");
    const cases = readdirSync(corpus).filter((f) => f.endsWith(".yaml"));
    // One process for all cases: load the built CLI as bin/f3s-gen.cjs does (the bundle) and
    // validate each with --json.
    const script = `
      const { loadRunMain } = await import(${JSON.stringify(join(packageRoot, "bin/load-cli.cjs"))});
      const runMain = await loadRunMain();
      const out = {};
      for (const f of ${JSON.stringify(cases)}) {
        let stdout = "";
        await runMain(["validate", f, "--json"], { stdout: (s) => (stdout += s), stderr: () => {}, isTTY: false, env: {}, cwd: ${JSON.stringify(corpus)}, now: () => new Date() });
        out[f] = JSON.parse(stdout).diagnostics;
      }
      process.stdout.write(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    for (const f of cases) expect(JSON.stringify(got[f], null, 2) + "\n", f).toBe(readFileSync(join(corpus, f.replace(/\.yaml$/, ".expected.json")), "utf8"));
  });
});
