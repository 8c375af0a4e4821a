// The CARP password is masked by its value, not only where the schema says it lives: every command
// that takes a spec is run on every broken spec of the error corpus, in text and --json, and its
// password must appear in none of their output. A misspelt key (`pasword:`), a duplicate key, a
// tab or a wrong level put the password where no pointer leads, which is what the review found.
// A valid cluster then goes through every command that succeeds, including show and the MANIFEST.
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { runMain, type Io } from "../src/cli.js";
import { extract, fixturesDir, privateSecrets, tempDir } from "./support.js";
import { findSecrets, isSecretKey, maskSource, maskText } from "../src/spec/secret-mask.js";

const corpus = join(fixturesDir, "invalid");
const cases = readdirSync(corpus).filter((f) => f.endsWith(".yaml")).sort();

async function cli(args: string[], cwd: string) {
  let out = "";
  const io: Io = { stdout: (s) => (out += s), stderr: (s) => (out += s), isTTY: false, env: {}, cwd, now: () => new Date() };
  const code = await runMain(args, io);
  return { code, out };
}

/** The value after `password:` (or a misspelling of it) on every line that has one, unquoted. */
function passwordsIn(text: string): string[] {
  const found = [...text.matchAll(/^\s*-?\s*pas+w(?:or|ro)?d\s*:\s*(?:'([^']*)'|"([^"]*)"|([^\s#]+))/gim)];
  return found.map((m) => m[1] ?? m[2] ?? m[3]!).filter((v) => v.length > 0);
}

// The words network.subr splits an alias at are refused by name: the schema's hint lists them
// ("not one of the words inet, inet6, link, ether"), so a spec whose password is one of them is
// not a secret the output could leak.
const REFUSED_WORDS = new Set(["inet", "inet6", "link", "ether"]);

/**
 * Every command that takes a spec, with and without --json where it has one. `pki status` reads
 * only the secrets directory (the spec just names the cluster), so it succeeds on a broken spec.
 */
const commands = (spec: string, secrets: string, out: string): string[][] => [
  ["validate", spec],
  ["validate", spec, "--json"],
  ["validate", spec, "--strict", "--json"],
  ["build", spec, "--out", out, "--secrets", secrets],
  ["build", spec, "--out", out, "--secrets", secrets, "--json"],
  ["diff", spec, "--out", out, "--secrets", secrets],
  ["diff", spec, "--out", out, "--secrets", secrets, "--json"],
  ["pki", "status", spec, "--secrets", secrets],
  ["pki", "status", spec, "--secrets", secrets, "--json"],
  ["pki", "renew", spec, "--all", "--secrets", secrets],
  ["pki", "revoke", spec, "r0", "--secrets", secrets],
  ["pki", "rotate-ca", spec, "--secrets", secrets],
];

describe("secret-mask", () => {
  it("takes password-like keys as secret, misspelt ones too, and nothing else", () => {
    for (const k of ["password", "pasword", "passwrod", "Password", "passwd", "pass", "carpPass", "pwd", "secret"]) expect(isSecretKey(k), k).toBe(true);
    for (const k of ["address", "hostname", "vhid", "aliases", "keyword", "path"]) expect(isSecretKey(k), k).toBe(false);
  });

  it("masks values in block and flow style, quoted or not, up to a comment, columns kept", () => {
    const text = "vip:\n  pasword: s3cret.x   # note\nother: {a: 1, 'password': \"q u'o\", b: 2}\nlast: 'it''s'\npass: it's\n";
    const secrets = findSecrets(text);
    expect(secrets.values).toEqual(expect.arrayContaining(["s3cret.x", "q u'o", "it's"]));
    const masked = maskSource(text, secrets);
    expect(masked.length).toBe(text.length);
    expect(masked.split("\n").map((l) => l.length)).toEqual(text.split("\n").map((l) => l.length));
    expect(masked).not.toMatch(/s3cret|q u'o|it's/);
    expect(masked).toContain("# note");
  });

  it("masks every other occurrence of a value, but not inside longer words", () => {
    const secrets = findSecrets("password: ab\ncomment: ab is here, tab stays\n");
    expect(maskSource("password: ab\ncomment: ab is here, tab stays\n", secrets)).toBe("password: **\ncomment: ** is here, tab stays\n");
    expect(maskText('got {"password":"ab","x":"tab"} ab', secrets)).toBe('got {"password":"********","x":"tab"} ********');
    const quoted = findSecrets("password: 'a\"b\\\\c'\n");
    expect(maskText(`got ${JSON.stringify({ password: quoted.values[0] })}`, quoted)).toBe('got {"password":"********"}');
  });
});

describe("the CARP password is masked by value", () => {
  it("the corpus has passwords to look for, including ones away from their place", () => {
    const all = cases.flatMap((c) => passwordsIn(readFileSync(join(corpus, c), "utf8")));
    expect(all.length).toBeGreaterThanOrEqual(cases.length * 0.9);
    expect(new Set(all).size).toBeGreaterThanOrEqual(5);
  });

  it.each(cases)("%s: in no output of any command", async (name) => {
    const work = tempDir();
    writeFileSync(join(work, name), readFileSync(join(corpus, name)));
    const secrets = privateSecrets("example");
    const passwords = passwordsIn(readFileSync(join(corpus, name), "utf8")).filter((p) => !REFUSED_WORDS.has(p));
    for (const args of commands(name, secrets, join(work, "out"))) {
      const r = await cli(args, work);
      if (args[1] !== "status") expect(r.code, `${args.join(" ")}: ${r.out}`).not.toBe(0);
      for (const p of passwords) expect(r.out.includes(p), `${args.join(" ")} shows the password ${JSON.stringify(p)}:\n${r.out}`).toBe(false);
    }
  });

  it("a valid cluster: build, diff, show, pki and the tarballs' MANIFEST never show it", async () => {
    const password = "Zq7.canary_42";
    const spec = readFileSync(join(fixturesDir, "valid/example/spec.yaml"), "utf8").replace(/password: \S+/, `password: ${password}`);
    expect(spec).toContain(password);
    const work = tempDir();
    writeFileSync(join(work, "spec.yaml"), spec);
    const secrets = privateSecrets("example");
    const out = join(work, "out");
    const outputs: string[] = [];
    const run = async (args: string[], ok = true) => {
      const r = await cli(args, work);
      if (ok) expect(r.code, r.out).toBeLessThanOrEqual(3);
      outputs.push(r.out);
    };
    await run(["build", "spec.yaml", "--out", out, "--secrets", secrets]);
    await run(["build", "spec.yaml", "--out", out, "--secrets", secrets, "--json"]);
    // diff after a change to the password itself: the changed netif is named, not shown.
    writeFileSync(join(work, "spec2.yaml"), spec.replace(password, "Other.canary_7"));
    for (const json of [[], ["--json"]]) await run(["diff", "spec2.yaml", "--out", out, "--secrets", secrets, ...json]);
    for (const host of ["f0", "f1"]) {
      await run(["show", host, "--out", out]);
      await run(["show", host, "--out", out, "--json"]);
      await run(["show", host, "--out", out, "--cat", "etc/rc.conf.d/netif"]);
      await run(["show", host, "--out", out, "--cat", "etc/rc.conf.d/netif", "--json"], false);
      await run(["show", host, "--out", out, "--cat", "usr/local/share/f3s/MANIFEST"]);
      // What lands on the host: the MANIFEST (world-readable) has no hash of netif, only a MAC
      // keyed with what never leaves the secrets directory.
      const root = extract(join(out, `${host}.tar.gz`));
      const manifest = readFileSync(join(root, "usr/local/share/f3s/MANIFEST"), "utf8");
      outputs.push(manifest);
      expect(manifest).toMatch(/^0600 mac:[0-9a-f]{64} \/etc\/rc\.conf\.d\/netif$/m);
      const netifHash = execFileSync("sha256sum", { input: readFileSync(join(root, "etc/rc.conf.d/netif")) }).toString().slice(0, 64);
      expect(manifest).not.toContain(netifHash);
    }
    await run(["pki", "status", "spec.yaml", "--secrets", secrets]);
    await run(["pki", "status", "spec.yaml", "--secrets", secrets, "--json"]);
    await run(["validate", "spec.yaml", "--json"]);
    expect(outputs.join("\n").length).toBeGreaterThan(1000);
    for (const text of outputs) {
      expect(text).not.toContain(password);
      expect(text).not.toContain("Other.canary_7");
    }
  });
});
