// What FreeBSD's rc does with the generated files at boot, checked with FreeBSD's own rules run by
// dash (FreeBSD's /bin/sh is an ash like it): which file each rc script's load_rc_config reads
// (platform facts C.2; libexec/rc/rc.subr), and how network.subr splits and classifies the CARP
// alias (libexec/rc/network.subr, ifalias_af_common and ifalias_af_common_handler).
import { describe, expect, it, beforeAll } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildCase, extract, hasTool, tempDir, type Built, seededRandom } from "./support.js";
import { checkSpecText } from "../src/spec/index.js";
import { packageRoot } from "../src/paths.js";
import { loadTemplates } from "../src/render/engine.js";
import { templatesDir } from "../src/paths.js";
import { hostContext } from "../src/render/context.js";
import type { Secrets } from "../src/pki/secrets.js";

const ready = hasTool("dash", ["-c", "true"]);
let example: Built;
beforeAll(async () => {
  example = await buildCase("example");
});

/** rc.subr's load_rc_config NAME: /etc/rc.conf, then /etc/rc.conf.d/NAME (and the local one). */
const loadRcConfig = `
load_rc_config() {
	for f in "$ROOT/etc/rc.conf" "$ROOT/etc/rc.conf.local" "$ROOT/etc/rc.conf.d/$1" "$ROOT/usr/local/etc/rc.conf.d/$1"; do
		if [ -r "$f" ]; then . "$f"; fi
	done
}
checkyesno() {
	eval "case \\"\\\${$1:-}\\" in [Yy][Ee][Ss]|[Tt][Rr][Uu][Ee]|[Oo][Nn]|1) return 0 ;; *) return 1 ;; esac"
}
`;

function rc(root: string, body: string): string {
  const r = spawnSync("dash", ["-c", loadRcConfig + body], { env: { ROOT: root, PATH: "/usr/bin:/bin" }, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe.skipIf(!ready)("boot: encryption keys", () => {
  it.each(["f0", "f1"])("%s: rc.d/zfs sees zfskeys_enable, so its second pass loads the keys after the key stick is mounted", (host) => {
    const root = extract(join(example.outDir, `${host}.tar.gz`));
    // zfs_poststart: `if checkyesno zfskeys_enable; then /etc/rc.d/zfskeys start; zfs_start; fi`,
    // after `load_rc_config zfs` (rc.d/zfs, REQUIRE zfsbe, which REQUIREs mountcritlocal).
    expect(rc(root, "load_rc_config zfs; checkyesno zfskeys_enable && echo second-pass")).toBe("second-pass");
    // rc.d/zfskeys itself (run by that second pass) reads its own file for the dataset list.
    const datasets = rc(root, 'load_rc_config zfskeys; checkyesno zfskeys_enable && echo "$zfskeys_datasets"');
    expect(datasets.split(" ")).toEqual(expect.arrayContaining(["zdata/enc", "zroot/bhyve"]));
    if (host === "f1") expect(datasets).toContain("zdata/sink/f0/zdata/enc/nfsdata");
  });

  it("the check can fail: a variable only in rc.conf.d/zfskeys is invisible to rc.d/zfs (the v1 bug)", () => {
    const root = extract(join(example.outDir, "f0.tar.gz"));
    spawnSync("rm", [join(root, "etc/rc.conf.d/zfs")]);
    expect(rc(root, "load_rc_config zfs; checkyesno zfskeys_enable && echo second-pass || echo none")).toBe("none");
  });

  it("late in boot f3s_carp_sync is enabled and ordered after the services it reconciles", () => {
    const root = extract(join(example.outDir, "f0.tar.gz"));
    expect(rc(root, "load_rc_config f3s_carp_sync; checkyesno f3s_carp_sync_enable && echo on")).toBe("on");
    const script = readFileSync(join(root, "usr/local/etc/rc.d/f3s_carp_sync"), "utf8");
    const require = /^# REQUIRE: (.*)$/m.exec(script)![1]!.split(" ");
    expect(require).toEqual(expect.arrayContaining(["LOGIN", "devd", "nfsd", "mountd", "stunnel"]));
  });
});

/**
 * network.subr, as dash runs it: the alias value is split into words (with pathname expansion, in
 * a directory with files a glob would match), cut into components at the words inet, inet6, link
 * and ether, each component eval'ed into the handler's arguments, and a component matching
 * `inet *[0-9a-fA-F]-*` is treated as an address range (the recursion that hangs the boot).
 * Prints, per alias line, "plain" followed by the words the handler would pass to ifconfig, or
 * "range" / "split".
 */
const networkSubr = `
cd "$GLOBDIR" || exit 1
while IFS= read -r args; do
	_tmpargs=
	parts=0
	for _c in $args; do
		case $_c in
		inet|inet6|link|ether)
			[ -n "$_tmpargs" ] && parts=$((parts + 1))
			_tmpargs=$_c
			;;
		*) _tmpargs="$_tmpargs $_c" ;;
		esac
	done
	parts=$((parts + 1))
	if [ "$parts" -ne 1 ]; then echo split; continue; fi
	eval "set -- $_tmpargs"
	case "$*" in
	inet\\ *[0-9a-fA-F]-*) echo range ;;
	inet\\ *) echo "plain $*" ;;
	*) echo split ;;
	esac
done
`;

function aliasLines(passwords: string[]): string[] {
  const spec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");
  const templates = loadTemplates(templatesDir);
  const netif = templates.get("storage/rc.conf.d/netif.hbs")!;
  const secrets = { ca: { certPem: "" }, trust: [""], alsoAllowed: new Map(), server: { certPem: "", keyPem: "" }, clients: new Map([["r0", { certPem: "", keyPem: "" }], ["r1", { certPem: "", keyPem: "" }], ["r2", { certPem: "", keyPem: "" }], ["earth", { certPem: "", keyPem: "" }]]) } as unknown as Secrets;
  return passwords.map((p) => {
    const checked = checkSpecText("spec.yaml", spec.replace("password: testpass", `password: "${p}"`));
    if (!checked.model) return "";
    const text = netif(hostContext(checked.model, { name: "f0", role: "storage" }, secrets));
    const value = /^ifconfig_\w+_alias0="(.*)"$/m.exec(text)![1]!;
    return value;
  });
}

function classify(lines: string[]): string[] {
  const dir = tempDir("f3s-glob-");
  for (const f of ["a", "b", "ab", "x.y", "inet"]) writeFileSync(join(dir, f), "");
  const r = spawnSync("dash", ["-c", networkSubr], { input: lines.join("\n") + "\n", env: { GLOBDIR: dir, PATH: "/usr/bin:/bin" }, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split("\n");
}


describe.skipIf(!ready)("boot: the CARP alias and network.subr", () => {
  // Letters, digits, the legal punctuation, and characters the schema must refuse.
  const alphabet = "abcdefABCDEFxyzXYZ0123456789._+=@,:/-*?[]$;`'\"\\ ";
  const next = seededRandom(20261122);
  const generated = Array.from({ length: 600 }, () => {
    const n = 1 + Math.floor(next() * 19);
    return Array.from({ length: n }, () => alphabet[Math.floor(next() * alphabet.length)]).join("");
  });
  const legal = "abcdefABCDEFxyzXYZ0123456789._+=@,:/";
  const legalOnly = Array.from({ length: 300 }, () => {
    const n = 1 + Math.floor(next() * 19);
    return Array.from({ length: n }, () => legal[Math.floor(next() * legal.length)]).join("");
  });
  const edge = ["inet", "inet6", "link", "ether", "alias", "vhid", "pass", "ab-cd", "3-x", "x-y", "-", "a*", "Zq8_vT3rN.b7Kw2", "N3wCarpPass", "a/b:c,d@e+f=g.h_i", "0123456789abcdefABC"];

  it("every password the schema accepts gives an alias network.subr passes to ifconfig unchanged, as one plain alias", () => {
    const candidates = [...edge, ...legalOnly, ...generated];
    const lines = aliasLines(candidates);
    const accepted = candidates.map((p, i) => [p, lines[i]!] as const).filter(([, l]) => l !== "");
    expect(accepted.length).toBeGreaterThan(300);
    const results = classify(accepted.map(([, l]) => l));
    accepted.forEach(([password, line], i) => {
      expect(results[i], `password ${JSON.stringify(password)}`).toBe(`plain ${line}`);
    });
  });

  it("refuses '-' and network.subr's keywords with a hint that says why", () => {
    for (const p of ["ab-cd", "x-y", "inet", "ether"]) {
      const spec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8").replace("password: testpass", `password: "${p}"`);
      const checked = checkSpecText("spec.yaml", spec);
      const d = checked.diagnostics.find((x) => x.pointer === "/storage/vip/password" && x.severity === "error");
      expect(d, p).toBeDefined();
      expect(d!.hint).toMatch(/no '-'.*network\.subr/);
      if (p.includes("-")) expect(JSON.stringify(checked.diagnostics), "the password is never shown").not.toContain(p);
    }
  });

  it("the emulation can fail: a password with a hex digit before '-' is read as an address range", () => {
    expect(classify(["inet vhid 1 advskew 0 pass ab-cd alias 192.0.2.1/32", "inet vhid 1 advskew 0 pass inet alias 192.0.2.1/32"])).toEqual(["range", "split"]);
  });
});
