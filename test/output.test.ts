// out/ is replaced as a whole or not at all.
import { describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { writeOutput, recoverOutput, OUT_MARKER } from "../src/pack/output.js";
import { build } from "../src/pipeline.js";
import { packageRoot } from "../src/paths.js";
import { listFiles, privateSecrets, tempDir } from "./support.js";

const snapshot = (dir: string) => new Map(listFiles(dir).map((f) => [f, readFileSync(join(dir, f)).toString("base64")]));

describe("writing out/", () => {
  it("keeps the previous output when the build fails just before the swap", async () => {
    const secretsDir = privateSecrets("example");
    const outDir = join(tempDir(), "out");
    const specPath = join(packageRoot, "fixtures/valid/example/spec.yaml");
    await build({ specPath, outDir, secretsDir, now: new Date() });
    const before = snapshot(outDir);
    const secretsBefore = snapshot(secretsDir);
    await expect(build({ specPath, outDir, secretsDir, now: new Date(), beforeSwap: () => { throw new Error("interrupted"); } })).rejects.toThrow("interrupted");
    expect(snapshot(outDir)).toEqual(before);
    expect(snapshot(secretsDir)).toEqual(secretsBefore);
    expect(readdirSync(join(outDir, ".."))).toEqual(["out"]);
  });

  it("restores the previous output if a run died between its two renames", () => {
    const parent = tempDir();
    const outDir = join(parent, "out");
    writeOutput(outDir, new Map([["a.tar.gz", Buffer.from("old")]]));
    renameSync(outDir, `${outDir}.old-12345`);
    mkdirSync(`${outDir}.tmp-12345`);
    recoverOutput(outDir);
    expect(readdirSync(parent)).toEqual(["out"]);
    expect(readFileSync(join(outDir, "a.tar.gz"), "utf8")).toBe("old");
  });

  it("replaces the whole directory: files of an earlier build do not linger", () => {
    const outDir = join(tempDir(), "out");
    writeOutput(outDir, new Map([["gone.tar.gz", Buffer.from("x")]]));
    writeOutput(outDir, new Map([["new.tar.gz", Buffer.from("y")]]));
    expect(readdirSync(outDir).sort()).toEqual([OUT_MARKER, "new.tar.gz"]);
  });

  it("refuses a non-empty directory without its marker", () => {
    const outDir = tempDir();
    writeFileSync(join(outDir, "x"), "mine");
    expect(() => writeOutput(outDir, new Map())).toThrow(/refusing to replace/);
    expect(existsSync(join(outDir, "x"))).toBe(true);
  });
});
