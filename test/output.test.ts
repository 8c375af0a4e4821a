// out/ is replaced as a whole or not at all.
import { describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
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

describe("a client's slot across builds", () => {
  it("warns, at the client's line, when removing a client before it moves an unpinned slot; a pinned one stays", async () => {
    const example = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");
    const secretsDir = privateSecrets("example");
    const outDir = join(tempDir(), "out");
    const dir = tempDir();
    const specPath = join(dir, "spec.yaml");
    const run = async (text: string) => {
      writeFileSync(specPath, text);
      const r = await build({ specPath, outDir, secretsDir, now: new Date() });
      expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      return r.diagnostics.filter((d) => d.code === "slot-moved");
    };
    expect(await run(example)).toEqual([]);
    const inventory = parse(readFileSync(join(outDir, "inventory.yml"), "utf8"));
    expect(inventory.all.children.f3s_clients.hosts.r1).toMatchObject({ f3s_slot: 2, f3s_service_port: 2325 });
    // r0 leaves; r1 is pinned to its slot, r2 and earth move down.
    const without = example.replace(/  - name: r0\n(.*\n){4}/, "").replace("  - name: r1\n", "  - name: r1\n    slot: 2\n");
    const moved = await run(without);
    expect(moved.map((d) => d.message)).toEqual([
      "r2's stunnel service moves from slot 3 to 1 (port 2324 on the storage VIP): slots not pinned follow the clients' order",
      "earth's stunnel service moves from slot 4 to 3 (port 2326 on the storage VIP): slots not pinned follow the clients' order",
    ]);
    expect(moved[0]!.hint).toContain("write `slot: 3` under r2 to keep its port");
    expect(moved[0]!.location!.line).toBe(without.split("\n").findIndex((l) => l === "  - name: r2") + 1);
    // The same spec again: nothing moves any more.
    expect(await run(without)).toEqual([]);
  });
});
