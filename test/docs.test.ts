// The docs: a README short enough to read in ten minutes that links every page of docs/, links that
// lead somewhere (files and #anchors), and a spec reference generated from the schema and current.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { packageRoot } from "../src/paths.js";
import { checkSpecText } from "../src/spec/index.js";
import { within, type Client, type Model } from "../src/spec/model.js";

const read = (rel: string) => readFileSync(join(packageRoot, rel), "utf8");
const pages = readdirSync(join(packageRoot, "docs")).filter((n) => n.endsWith(".md")).sort();

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");

function headingsOf(text: string): Set<string> {
  const out = new Set<string>();
  let inCode = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("```")) inCode = !inCode;
    else if (!inCode && /^#{1,6} /.test(line)) out.add(anchor(line.replace(/^#+ /, "")));
  }
  return out;
}

describe("the docs", () => {
  it("the README's table of what each client certificate grants is the example's, row for row", () => {
    const model = checkSpecText("spec.yaml", read("examples/f3s.example.yaml")).model!;
    const section = read("README.md").split("## What a client certificate grants")[1]!.split("\n## ")[0]!;
    const rows = section.split("\n").filter((l) => /^\| [a-z]/.test(l) && !l.startsWith("| client")).map((l) => l.split("|").slice(1, -1).map((c) => c.trim()));
    // What a client reaches: the file systems its exports lines are on (FreeBSD applies a line to
    // the whole file system), said as its exports when each lies within one of them.
    const reach = (m: Model, c: Client) => {
      const fileSystems = [m.nfs.root, ...m.nfs.fileSystems.map((f) => f.path)];
      const fsOf = (p: string) => fileSystems.filter((f) => within(p, f)).sort((a, b) => b.length - a.length)[0]!;
      const wider = [...new Set(c.exportLines.map((l) => fsOf(l[0]!)))].filter((f) => !c.exports.some((e) => within(f, e)));
      return wider.length ? `all of ${wider.join(", ")}` : c.exports.join(", ");
    };
    const confined = checkSpecText("spec.yaml", read("examples/f3s.example.yaml").replace(/^( +)tlsPort: .*$/m, "$&\n$1exportDatasets: true")).model!;
    expect(rows).toEqual(
      model.clients.map((c, i) => [c.name, `${model.vip.address}:${c.tunnelPort}`, c.sourceAddress, c.exports.join(", "), c.maproot, reach(confined, confined.clients[i]!), reach(model, c)]),
    );
  });

  it("the README reads in ten minutes (at most 2,300 words) and links every page of docs/", () => {
    const readme = read("README.md");
    expect(readme.split(/\s+/).filter(Boolean).length).toBeLessThanOrEqual(2300);
    for (const page of pages) expect(readme, page).toContain(`](docs/${page})`);
  });

  it("every relative link in the README and docs/ leads to a file, and its #anchor to a heading there", () => {
    for (const file of ["README.md", ...pages.map((p) => `docs/${p}`)]) {
      const text = read(file);
      // Links in the prose, not in code (a pattern like [a-z](x) is not a link).
      const prose = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
      for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const [path, hash] = target.split("#");
        const abs = path ? resolve(dirname(join(packageRoot, file)), path) : join(packageRoot, file);
        expect(existsSync(abs), `${file}: ${target}`).toBe(true);
        if (hash && abs.endsWith(".md")) expect(headingsOf(readFileSync(abs, "utf8")).has(hash), `${file}: ${target}`).toBe(true);
      }
    }
  });

  it("docs/spec-reference.md is generated from the schema, lists every key, and is current", () => {
    const r = spawnSync(process.execPath, [join(packageRoot, "scripts/spec-reference.mjs"), "--check"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const reference = read("docs/spec-reference.md");
    for (const key of ["storage.vip.passwordFile", "clients[].kubeconfig", "overrides[].patches[].find", "storage.encryption.keyDirectory"]) expect(reference).toContain(`\`${key}\``);
  });
});
