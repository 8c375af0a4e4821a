// Golden files: every file of every host's tarball, byte for byte, against fixtures/valid/<case>/expected.
// They change only through `npm run test:update` (F3S_UPDATE_GOLDEN=1), never by default.
import { describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { buildCase, fixturesDir, listFiles, readOut, validCases } from "./support.js";

const UPDATE = process.env.F3S_UPDATE_GOLDEN === "1";

describe.each(validCases)("golden output of fixtures/valid/%s", (caseName) => {
  it("builds exactly the expected files", async () => {
    const { result, outDir } = await buildCase(caseName);
    expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const actual = new Map<string, Buffer>();
    for (const [tarball, entries] of readOut(outDir)) {
      const host = tarball === "keys.tar.gz" ? "keys" : tarball.replace(/\.tar\.gz$/, "");
      for (const e of entries) actual.set(`${host}/${e.name}`, e.content);
    }
    const expectedDir = join(fixturesDir, "valid", caseName, "expected");
    if (UPDATE) {
      rmSync(expectedDir, { recursive: true, force: true });
      for (const [rel, content] of actual) {
        mkdirSync(dirname(join(expectedDir, rel)), { recursive: true });
        writeFileSync(join(expectedDir, rel), content);
      }
    }
    const expectedFiles = listFiles(expectedDir);
    expect([...actual.keys()].sort(), "the set of files per host").toEqual(expectedFiles);
    for (const rel of expectedFiles) {
      const want = readFileSync(join(expectedDir, rel));
      const got = actual.get(rel)!;
      if (rel.startsWith("keys/")) expect(got.equals(want), rel).toBe(true);
      else expect(got.toString("utf8"), rel).toBe(want.toString("utf8"));
    }
  });
});
