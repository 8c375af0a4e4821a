// A mutation fuzzer: thousands of seeded mutations of both fixture specs (a node deleted, a key
// misspelt, a value of another type, a key twice, a pair moved to another level, a collection
// emptied or blown up), each through the spec checks and, when it is valid, through rendering; a
// sample through the CLI's build and diff. Never a crash: every input ends in a model or in
// diagnostics that name file, line and column; an invalid build writes nothing.
// Seeds are fixed, so a failure is reproducible: the message names the case's seed and mutations.
// Counter-examples it found became cases in fixtures/invalid/.
import { describe, expect, it } from "vitest";
import { cpSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Document, isMap, isPair, isScalar, isSeq, parseDocument, YAMLMap, YAMLSeq, Pair, Scalar } from "yaml";
import { checkSpecText } from "../src/spec/index.js";
import { hasErrors } from "../src/diag/diagnostic.js";
import { renderAll, loadTemplates } from "../src/render/engine.js";
import { templatesDir } from "../src/paths.js";
import type { Secrets } from "../src/pki/secrets.js";
import { runMain } from "../src/cli.js";
import { buildCase, fixturesDir, tempDir, seededRandom } from "./support.js";

const CASES = ["example", "other"] as const;
const PER_CASE = Number(process.env.F3S_FUZZ_MUTATIONS ?? 5000);


type Rand = () => number;
const pick = <T>(r: Rand, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;

/** Every collection in the document with its path, for choosing where to mutate. */
function collections(doc: Document): (YAMLMap | YAMLSeq)[] {
  const out: (YAMLMap | YAMLSeq)[] = [];
  const walk = (node: unknown) => {
    if (isMap(node)) {
      out.push(node);
      for (const p of node.items) walk(p.value);
    } else if (isSeq(node)) {
      out.push(node);
      for (const i of node.items) walk(i);
    }
  };
  walk(doc.contents);
  return out;
}

const ODD_VALUES: unknown[] = [
  0, -1, 1, 255, 256, 65536, 99999999999, 1.5, "", "x", "a b", "../../etc", "/", "/etc", "-", "a\tb", "\u001b[31mred", "Ä", "${x}", "$(reboot)",
  true, false, null, [], {}, [1, 2], { a: 1 }, "x".repeat(300), "192.168.1.1", "10.0.0.0/8", "0.0.0.0", "1m", "0s", "ufs",
];

function typo(key: string, r: Rand): string {
  if (key.length < 2) return key + "x";
  const i = Math.floor(r() * key.length);
  switch (Math.floor(r() * 4)) {
    case 0:
      return key.slice(0, i) + key.slice(i + 1);
    case 1:
      return key.slice(0, i) + key[i]!.toUpperCase() + key.slice(i + 1);
    case 2:
      return i + 1 < key.length ? key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2) : key + "s";
    default:
      return key.slice(0, i) + "e" + key.slice(i);
  }
}

/** One mutation, described for the failure message. */
function mutate(doc: Document, r: Rand): string {
  const targets = collections(doc);
  const c = pick(r, targets);
  const items = c.items as unknown[];
  const op = Math.floor(r() * 8);
  if (items.length === 0 && op !== 5) {
    const value = doc.createNode(pick(r, ODD_VALUES));
    (c as YAMLSeq).items = [(isMap(c) ? new Pair(new Scalar("x"), value) : value) as never];
    return "filled an empty collection";
  }
  const i = Math.floor(r() * items.length);
  const item = items[i];
  const keyOf = (x: unknown) => (isPair(x) && isScalar(x.key) ? String(x.key.value) : `#${i}`);
  switch (op) {
    case 0:
      items.splice(i, 1);
      return `deleted ${keyOf(item)}`;
    case 1:
      if (isPair(item) && isScalar(item.key)) {
        const from = String(item.key.value);
        item.key = new Scalar(typo(from, r));
        return `renamed ${from} to ${String((item.key as Scalar).value)}`;
      }
      items.splice(i, 1);
      return `deleted #${i}`;
    case 2: {
      const value = doc.createNode(pick(r, ODD_VALUES));
      if (isPair(item)) item.value = value;
      else items[i] = value;
      return `retyped ${keyOf(item)} to ${JSON.stringify(pick(r, [value.toJSON()]))?.slice(0, 40)}`;
    }
    case 3:
      if (isPair(item)) {
        items.splice(i, 0, new Pair(item.key, doc.createNode(pick(r, ODD_VALUES))));
        return `duplicated key ${keyOf(item)}`;
      }
      items.splice(i, 0, item);
      return `duplicated item #${i}`;
    case 4: {
      const to = pick(r, targets.filter((t) => t !== c && isMap(t) === isMap(c)));
      if (!to) return "no move";
      items.splice(i, 1);
      (to.items as unknown[]).push(item);
      return `moved ${keyOf(item)} to another ${isMap(c) ? "mapping" : "list"}`;
    }
    case 5:
      (c as YAMLSeq).items = [];
      return "emptied a collection";
    case 6:
      for (let k = 0; k < 200; k++) items.push(isPair(item) ? new Pair(new Scalar(`k${k}`), item.value) : item);
      return `blew up a collection with 200 copies of ${keyOf(item)}`;
    default: {
      if (isPair(item) && isScalar(item.value) && typeof item.value.value === "string") {
        item.value = new Scalar(item.value.value + pick(r, ["-", "/", ".", " ", "x", "..", "\u0000", "0"]));
        return `appended to ${keyOf(item)}`;
      }
      items.splice(i, 1);
      return `deleted ${keyOf(item)}`;
    }
  }
}

/** Any client name gets a stand-in key pair: rendering only places the PEM text. */
const anySecrets = (() => {
  const pair = { certPem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", keyPem: "KEY" };
  const clients = new (class extends Map<string, typeof pair> {
    override get() {
      return pair;
    }
  })();
  const zfsKeys = new (class extends Map<string, Buffer> {
    override get() {
      return Buffer.alloc(32);
    }
  })();
  return { ca: pair, trust: [pair.certPem], alsoAllowed: new Map(), server: pair, clients, zfsKeys } as unknown as Secrets;
})();

describe("mutation fuzzer", () => {
  const templates = loadTemplates(templatesDir);

  it.each(CASES)(`%s: ${PER_CASE} seeded mutations: never a crash, every error located, every valid result renders`, (caseName) => {
    const source = readFileSync(join(fixturesDir, "valid", caseName, "spec.yaml"), "utf8");
    let invalid = 0;
    let valid = 0;
    for (let seed = 1; seed <= PER_CASE; seed++) {
      const r = seededRandom(seed * 7919 + caseName.length);
      const doc = parseDocument(source);
      const steps = [mutate(doc, r)];
      if (r() < 0.3) steps.push(mutate(doc, r));
      const text = doc.toString();
      const where = `${caseName} seed ${seed}: ${steps.join("; ")}`;
      let checked;
      try {
        checked = checkSpecText("fuzz.yaml", text);
      } catch (e) {
        throw new Error(`${where}: the checks crashed: ${(e as Error).stack}\n--- spec ---\n${text}`);
      }
      for (const d of checked.diagnostics) {
        const at = d.location;
        if (!(at && at.file === "fuzz.yaml" && at.line >= 1 && at.col >= 1 && d.message.length > 0)) {
          throw new Error(`${where}: an unlocated diagnostic ${JSON.stringify(d)}\n--- spec ---\n${text}`);
        }
      }
      if (hasErrors(checked.diagnostics)) {
        invalid++;
        expect(checked.model, where).toBeUndefined();
        continue;
      }
      valid++;
      try {
        renderAll(checked.model!, anySecrets, templates);
      } catch (e) {
        throw new Error(`${where}: a valid spec did not render: ${(e as Error).stack}\n--- spec ---\n${text}`);
      }
    }
    // Both kinds must occur, or the fuzzer is not exploring.
    expect(invalid).toBeGreaterThan(PER_CASE / 4);
    expect(valid).toBeGreaterThan(PER_CASE / 50);
  }, 600_000);

  it("a sample through the CLI: build and diff exit 0, 1 or 3, never throw; an invalid build leaves out/ as it was", async () => {
    const base = await buildCase("example");
    const source = readFileSync(join(fixturesDir, "valid", "example", "spec.yaml"), "utf8");
    const snapshot = (dir: string) => readdirSync(dir).map((n) => `${n}:${statSync(join(dir, n)).mtimeMs}:${statSync(join(dir, n)).size}`).sort();
    const before = snapshot(base.outDir);
    let builds = 0;
    for (let seed = 1; builds < 40 && seed < 400; seed++) {
      const r = seededRandom(seed * 104729);
      const doc = parseDocument(source);
      const step = mutate(doc, r);
      const text = doc.toString();
      // Valid mutations that add clients would generate RSA-4096 keys: keep the sample fast.
      const checked = checkSpecText("fuzz.yaml", text);
      if (!hasErrors(checked.diagnostics) && checked.model!.clients.some((c) => !["r0", "r1", "r2", "earth"].includes(c.name))) continue;
      builds++;
      const dir = tempDir();
      const spec = join(dir, "fuzz.yaml");
      writeFileSync(spec, text);
      const secrets = join(dir, "secrets");
      cpSync(base.secretsDir, secrets, { recursive: true });
      let out = "";
      const io = { stdout: (s: string) => (out += s), stderr: (s: string) => (out += s), isTTY: false, env: {}, cwd: dir, now: () => new Date() };
      const where = `seed ${seed}: ${step}`;
      const diff = await runMain(["diff", spec, "--out", base.outDir, "--secrets", secrets], io);
      expect([0, 1, 3], `${where}\n${out}`).toContain(diff);
      const code = await runMain(["build", spec, "--out", base.outDir, "--secrets", secrets, "--json"], io);
      expect([0, 1], `${where}\n${out}`).toContain(code);
      expect(out, where).not.toMatch(/TypeError|ReferenceError|    at /);
      if (code === 1) expect(snapshot(base.outDir), `${where}: out/ changed`).toEqual(before);
      else {
        // A successful build replaced out/: compare later failures with this one.
        before.splice(0, before.length, ...snapshot(base.outDir));
      }
    }
    expect(builds).toBe(40);
  }, 600_000);
});
