// The schema and the semantic checks: every rule fires with its pointer, its location and a hint,
// and the example (the spec contract) is accepted unchanged.
import { spawnSync } from "node:child_process";
import { hasTool } from "./support.js";
import { describe, expect, it } from "vitest";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkSpecFile, checkSpecText } from "../src/spec/index.js";
import { loadSchema } from "../src/spec/schema-check.js";
import { systemdEscapePath } from "../src/spec/systemd-escape.js";
import { packageRoot } from "../src/paths.js";

const example = readFileSync(join(packageRoot, "examples/f3s.example.yaml"), "utf8");
const errorsOf = (text: string) => checkSpecText("spec.yaml", text).diagnostics.filter((d) => d.severity === "error");

/** The example with `from` replaced by `to` (exactly once, so the test cannot silently miss). */
function edit(from: string | RegExp, to: string, text = example): string {
  const count = text.split(from).length - 1;
  if (typeof from === "string" && count !== 1) throw new Error(`${from} occurs ${count} times`);
  return text.replace(from, to);
}

function lineOf(text: string, needle: string): number {
  return text.slice(0, text.indexOf(needle)).split("\n").length;
}

describe("the spec contract", () => {
  it("accepts the bundled example unchanged, with warnings only for what is unsafe on a real host", () => {
    const r = checkSpecText("spec.yaml", example);
    // The tutorial's password, and root on every client being root on the export (the blog's
    // -maproot=root, kept as the default but never silently).
    expect(r.diagnostics.map((d) => d.code)).toEqual(["weak-carp-password", "implicit-root-access"]);
    expect(r.model!.hosts.map((h) => h.name)).toEqual(["earth", "f0", "f1", "f2", "r0", "r1", "r2"]);
  });

  it("bundles the same example as ../shared/spec (when it is there)", () => {
    const shared = join(packageRoot, "../shared/spec/f3s.example.yaml");
    if (existsSync(shared)) expect(example).toBe(readFileSync(shared, "utf8"));
  });

  it("describes every property in the schema", () => {
    const { schema } = loadSchema();
    const missing: string[] = [];
    const walk = (node: any, path: string) => {
      if (!node || typeof node !== "object") return;
      for (const [k, v] of Object.entries<any>(node.properties ?? {})) {
        if (!v.description) missing.push(`${path}/${k}`);
        walk(v, `${path}/${k}`);
      }
      if (node.items) walk(node.items, `${path}[]`);
    };
    walk(schema, "");
    for (const [k, v] of Object.entries<any>(schema.definitions)) if (!v.description) missing.push(`#/definitions/${k}`);
    expect(missing).toEqual([]);
  });

  it("derives the model: FQDNs, NFSv4 paths, zrepl names, key files, unit names", () => {
    const m = checkSpecText("spec.yaml", example).model!;
    expect(m.vip.hostsLine).toBe("192.168.1.138 f3s-storage-ha f3s-storage-ha.lan f3s-storage-ha.lan.buetow.org");
    expect(m.clients.find((c) => c.name === "earth")!.mounts[0]).toMatchObject({ v4Path: "/", unit: "data-nfs.mount" });
    expect(m.clients.find((c) => c.name === "r0")!.mounts[0]).toMatchObject({ v4Path: "/k3svolumes", unit: "data-nfs-k3svolumes.mount", options: "port=2323,hard,nosuid,nodev,_netdev" });
    expect(m.replication.jobs.map((j) => [j.name, j.sinkPath])).toEqual([
      ["f0_to_f1_nfsdata", "zdata/sink/f0/zdata/enc/nfsdata"],
      ["f0_to_f1_fedora", "zdata/sink/f0/zroot/bhyve/fedora"],
    ]);
    expect(m.replication.receivedNfsDataset).toBe("zdata/sink/f0/zdata/enc/nfsdata");
    expect(m.encryption.nfsKeyFile).toBe("/keys/f0.lan.buetow.org:zdata.key");
    expect([m.primary.advskew, m.standby.advskew]).toEqual([0, 100]);
  });
});

describe("systemd-escape --path", () => {
  it.each([
    ["/data/nfs/k3svolumes", "data-nfs-k3svolumes"],
    ["/data/nfs/k3s-volumes", "data-nfs-k3s\\x2dvolumes"],
    ["/", "-"],
    ["/srv/.hidden", "srv-.hidden"],
    ["/.hidden/x", "\\x2ehidden-x"],
    ["/a_b/c.d", "a_b-c.d"],
  ])("%s -> %s", (path, unit) => expect(systemdEscapePath(path)).toBe(unit));

  it.skipIf(!hasTool("systemd-escape"))("agrees with systemd's own systemd-escape --path", () => {
    const paths = ["/data/nfs", "/data/.nfs", "/.x/.y", "/a b/c-d", "/var/lib/k8s-vols", "/mnt/ä", "/x/y.z/_w:1", "/srv//a/", "/a\\b"];
    const real = spawnSync("systemd-escape", ["--path", ...paths], { encoding: "utf8" }).stdout.trim().split(/\s+/);
    expect(paths.map(systemdEscapePath)).toEqual(real);
  });
});

interface Case {
  name: string;
  text: string;
  code: string;
  pointer: string;
  /** A string on the line the error must point at. */
  at: string;
}

const cases: Case[] = [
  { name: "wrong version", text: edit("version: 1", "version: 2"), code: "schema.const", pointer: "/version", at: "version: 2" },
  { name: "unknown key with a suggestion", text: edit("    vhid: 1\n", "    vhid: 1\n    vhdi: 2\n"), code: "schema.unknown-key", pointer: "/storage/vip/vhdi", at: "vhdi: 2" },
  { name: "missing required key", text: edit("    tlsPort: 2323                   # stunnel port on the VIP, and on each client's loopback\n", ""), code: "schema.required", pointer: "/storage/nfs/tlsPort", at: "root: /data/nfs" },
  { name: "wrong type", text: edit("keep: 10                    #", "keep: ten                    #"), code: "schema.type", pointer: "/storage/replication/datasets/0/keep", at: "keep: ten" },
  { name: "bad IPv4", text: edit("address: 192.168.1.138 ", "address: 192.168.1.300 "), code: "schema.format", pointer: "/storage/vip/address", at: "192.168.1.300" },
  { name: "bad prefix", text: edit("192.168.1.130/24", "192.168.1.130/33"), code: "schema.format", pointer: "/storage/nodes/0/address", at: "/33" },
  { name: "vhid out of range", text: edit("vhid: 1", "vhid: 256"), code: "schema.range", pointer: "/storage/vip/vhid", at: "vhid: 256" },
  { name: "advskew out of range", text: edit("advskew: 100", "advskew: 255"), code: "schema.range", pointer: "/storage/nodes/1/advskew", at: "advskew: 255" },
  { name: "CARP password too long", text: edit("password: testpass", "password: abcdefghijklmnopqrst"), code: "schema.pattern", pointer: "/storage/vip/password", at: "password: abcdef" },
  { name: "interval with two units", text: edit("interval: 10m", "interval: 1h30m"), code: "schema.pattern", pointer: "/storage/replication/datasets/1/interval", at: "1h30m" },
  { name: "weak key size", text: edit("keyBits: 4096", "keyBits: 1024"), code: "schema.enum", pointer: "/pki/keyBits", at: "keyBits: 1024" },
  { name: "invalid ZFS name", text: edit("sinkRoot: zdata/sink", "sinkRoot: zdata//sink"), code: "schema.format", pointer: "/storage/replication/sinkRoot", at: "zdata//sink" },
  { name: "path traversal in a host name", text: edit("  - name: f2", "  - name: ../f2"), code: "schema.pattern", pointer: "/members/0/name", at: "../f2" },
  { name: "shell injection in a path", text: edit("root: /data/nfs ", "root: /data/$(reboot) "), code: "schema.format", pointer: "/storage/nfs/root", at: "$(reboot)" },
  { name: "space in a mountpoint", text: edit("mountpoint: /data/nfs\n", "mountpoint: /data/my nfs\n"), code: "schema.format", pointer: "/clients/3/mounts/0/mountpoint", at: "my nfs" },
  { name: "quote in a subject field", text: edit("organization: F3S Storage", 'organization: F3S "Storage"'), code: "schema.pattern", pointer: "/pki/organization", at: "organization:" },
  { name: "duplicate host name", text: edit("  - name: r2\n", "  - name: r1\n"), code: "duplicate-name", pointer: "/clients/2/name", at: "- name: r1\n    mounts:\n      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs/k3svolumes\n    restartStuckPods: true\n  - name: earth" },
  { name: "two primaries", text: edit("role: standby", "role: primary"), code: "node-roles", pointer: "/storage/nodes/1/role", at: "role: primary                 # zrepl" },
  { name: "VIP outside the subnet", text: edit("address: 192.168.1.138 ", "address: 192.168.7.138 "), code: "vip-outside-subnet", pointer: "/storage/vip/address", at: "192.168.7.138" },
  { name: "VIP is a node's address", text: edit("address: 192.168.1.138 ", "address: 192.168.1.130 "), code: "vip-is-node", pointer: "/storage/vip/address", at: "address: 192.168.1.130 " },
  { name: "export outside the NFS root", text: edit("      - export: /data/nfs\n", "      - export: /srv/nfs\n"), code: "export-outside-root", pointer: "/clients/3/mounts/0/export", at: "/srv/nfs" },
  { name: "NFS dataset not replicated", text: edit("dataset: zdata/enc/nfsdata ", "dataset: zdata/enc/other "), code: "nfs-not-replicated", pointer: "/storage/nfs/dataset", at: "zdata/enc/other" },
  { name: "replicated dataset not encrypted", text: edit("name: zroot/bhyve/fedora", "name: zroot/plain/fedora"), code: "not-encrypted", pointer: "/storage/replication/datasets/1/name", at: "zroot/plain/fedora" },
  { name: "duplicate mountpoint", text: edit("      - export: /data/nfs\n        mountpoint: /data/nfs\n", "      - export: /data/nfs\n        mountpoint: /data/nfs\n      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs\n"), code: "duplicate-mountpoint", pointer: "/clients/3/mounts/1/mountpoint", at: "mountpoint: /data/nfs\n\nmembers" },
  { name: "stunnel on nfsd's port", text: edit("tlsPort: 2323", "tlsPort: 2049"), code: "port-conflict", pointer: "/storage/nfs/tlsPort", at: "tlsPort: 2049" },
  { name: "port out of range", text: edit("port: 8888", "port: 70000"), code: "schema.range", pointer: "/storage/replication/port", at: "port: 70000" },
  { name: "two clients pinned to one slot", text: edit("  - name: r1\n", "  - name: r1\n    slot: 2\n", edit("  - name: r0\n", "  - name: r0\n    slot: 2\n")), code: "duplicate-slot", pointer: "/clients/1/slot", at: "slot: 2\n    mounts:\n      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs/k3svolumes\n    restartStuckPods: true\n  - name: r2" },
  { name: "a client's port on nfsd's (tlsPort + slot)", text: edit("tlsPort: 2323", "tlsPort: 2047"), code: "port-conflict", pointer: "/clients/1", at: "- name: r1" },
  { name: "more clients than slots", text: edit("\nmembers:", Array.from({ length: 247 }, (_, i) => `\n  - name: w${i}\n    mounts:\n      - export: /data/nfs/k3svolumes\n        mountpoint: /mnt/v`).join("") + "\n\nmembers:"), code: "too-many-clients", pointer: "/clients", at: "- name: r0\n" },
  { name: "a client's port past 65535", text: edit("tlsPort: 2323", "tlsPort: 65534"), code: "port-conflict", pointer: "/clients/1", at: "- name: r1" },
  {
    name: "an export whose dataset name would pass ZFS's 255 bytes",
    text: edit("    tlsPort: 2323 ", "    exportDatasets: true\n    tlsPort: 2323 ", edit("      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs/k3svolumes\n    restartStuckPods: true\n  - name: r2", `      - export: /data/nfs/${"v".repeat(230)}\n        mountpoint: /mnt/long\n    restartStuckPods: true\n  - name: r2`)),
    code: "export-dataset-name-too-long",
    pointer: "/clients/1/mounts/0/export",
    at: "vvvv",
  },
  {
    name: "a dataset replicated again below the NFS dataset (export datasets)",
    text: edit("    tlsPort: 2323 ", "    exportDatasets: true\n    tlsPort: 2323 ", edit("      - name: zroot/bhyve/fedora\n", "      - name: zdata/enc/nfsdata/k3svolumes\n        interval: 5m\n        keep: 5\n      - name: zroot/bhyve/fedora\n")),
    code: "export-datasets-overlap",
    pointer: "/storage/replication/datasets/1/name",
    at: "zdata/enc/nfsdata/k3svolumes",
  },
];

describe.each(cases)("$name", (c) => {
  it(`reports ${"$code"} at its pointer and line, with a hint`, () => {
    const errors = errorsOf(c.text);
    const hit = errors.find((e) => e.code === c.code && e.pointer === c.pointer);
    expect(hit, JSON.stringify(errors, null, 1)).toBeDefined();
    expect(hit!.location!.line).toBe(lineOf(c.text, c.at));
    expect(hit!.hint).toBeTruthy();
  });
});

describe("diagnostics", () => {
  it("suggests the key meant by a misspelling", () => {
    const [e] = errorsOf(edit("    vhid: 1\n", "    vhdi: 1\n"));
    expect(e!.message).toContain('did you mean "vhid"');
  });

  it("never repeats the CARP password", () => {
    const text = edit("password: testpass", "password: 'hunter2 secret'");
    for (const d of checkSpecText("spec.yaml", text).diagnostics) expect(JSON.stringify(d)).not.toContain("hunter2");
    for (const d of checkSpecText("spec.yaml", example).diagnostics) expect(JSON.stringify(d)).not.toContain("testpass");
  });

  it("reports schema and semantic errors of different parts in one run", () => {
    const text = edit("vhid: 1", "vhid: 0", edit("      - export: /data/nfs\n", "      - export: /srv\n"));
    expect(errorsOf(text).map((e) => e.code).sort()).toEqual(["export-outside-root", "schema.range"]);
  });

  it("reports YAML syntax errors and duplicate keys with their position", () => {
    const dup = errorsOf("version: 1\ndomain: a.b\ndomain: c.d\n");
    expect(dup[0]).toMatchObject({ code: "yaml.duplicate-key", location: { line: 3, col: 1 } });
    const syntax = errorsOf("version: 1\npki: [unclosed\n");
    expect(syntax[0]!.code).toBe("yaml.syntax");
  });

  it("rejects an empty file and a non-mapping document", () => {
    expect(errorsOf("")[0]!.code).toBe("empty");
    expect(errorsOf("# only a comment\n")[0]!.code).toBe("empty");
    expect(errorsOf("- a\n- b\n")[0]!.code).toBe("schema.type");
  });

  it("warns about soft mounts and a standby that would win elections", () => {
    const text = edit("advskew: 100", "advskew: 0", edit("      - export: /data/nfs\n        mountpoint: /data/nfs\n", "      - export: /data/nfs\n        mountpoint: /data/nfs\n        options: [soft]\n"));
    const r = checkSpecText("spec.yaml", text);
    expect(r.diagnostics.filter((d) => d.severity === "warning").map((d) => d.code).sort()).toEqual(["advskew-order", "implicit-root-access", "soft-mount", "weak-carp-password"]);
    expect(r.model).toBeDefined();
  });

  it("rootAccess: root keeps -maproot=root without a warning; squash maps root to nobody", () => {
    for (const [value, maproot] of [["root", "root"], ["squash", "nobody"]] as const) {
      const r = checkSpecText("spec.yaml", example.replace(/^( +)tlsPort: (\d+).*$/m, (_l, i: string, p: string) => `${i}tlsPort: ${p}\n${i}rootAccess: ${value}`));
      expect(r.diagnostics.map((d) => d.code)).toEqual(["weak-carp-password"]);
      expect(r.model!.nfs.maproot).toBe(maproot);
    }
  });
});

describe("shared settings: YAML merge keys and x- keys", () => {
  // Three identical workers written once: an x- key holds the anchor, each client merges it.
  const shared = (() => {
    const start = example.indexOf("clients:");
    const end = example.indexOf("\nmembers:");
    const clients = [
      "x-worker: &worker",
      "  mounts:",
      "    - export: /data/nfs/k3svolumes",
      "      mountpoint: /data/nfs/k3svolumes",
      "  restartStuckPods: true",
      "",
      "clients:",
      ...["r0", "r1", "r2"].flatMap((n) => [`  - name: ${n}`, "    <<: *worker", `    x-note: worker ${n}`]),
      "  - name: earth",
      "    redirectNfsPort: true",
      "    mounts:",
      "      - export: /data/nfs",
      "        mountpoint: /data/nfs",
      "",
    ].join("\n");
    return example.slice(0, start) + clients + example.slice(end);
  })();

  it("give the same model as the settings written out", () => {
    const a = checkSpecText("spec.yaml", example);
    const b = checkSpecText("spec.yaml", shared);
    expect(b.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(JSON.stringify(b.model)).toBe(JSON.stringify(a.model));
  });

  it("a key set beside the merge overrides the shared one; a mistake in the shared part is still found", () => {
    const overridden = checkSpecText("spec.yaml", shared.replace("  - name: r2\n    <<: *worker\n", "  - name: r2\n    <<: *worker\n    restartStuckPods: false\n"));
    expect(overridden.model!.clients.find((c) => c.name === "r2")!.restartStuckPods).toBe(false);
    const typo = errorsOf(shared.replace("  restartStuckPods: true\n\nclients:", "  restartStuckPod: true\n\nclients:"));
    expect(typo.map((d) => d.message).join("\n")).toMatch(/restartStuckPod/);
  });
});

describe("the CARP password from a file or the environment (a spec without a secret)", () => {
  const inline = /^( +)password: (\S+).*$/m;
  const password = inline.exec(example)![2]!;
  const specWith = (line: string) => {
    const dir = mkdtempSync(join(tmpdir(), "f3s-spec-"));
    const file = join(dir, "spec.yaml");
    writeFileSync(file, example.replace(inline, `$1${line}`));
    return { dir, file };
  };
  const errors = (r: ReturnType<typeof checkSpecFile>) => r.diagnostics.filter((d) => d.severity === "error");

  it("passwordFile beside the spec gives the same model as the password written inline", () => {
    const { dir, file } = specWith("passwordFile: carp-password");
    writeFileSync(join(dir, "carp-password"), `${password}\n`, { mode: 0o600 });
    const r = checkSpecFile(file, "spec.yaml", {});
    expect(errors(r)).toEqual([]);
    expect(JSON.stringify(r.model)).toBe(JSON.stringify(checkSpecText("spec.yaml", example).model));
  });

  it("a password file others can read, or one that is missing, is an error at passwordFile", () => {
    const { dir, file } = specWith("passwordFile: carp-password");
    const line = lineOf(readFileSync(file, "utf8"), "passwordFile:");
    let e = errors(checkSpecFile(file, "spec.yaml", {}));
    expect(e.map((d) => [d.pointer, d.location?.line])).toEqual([["/storage/vip/passwordFile", line]]);
    expect(e[0]!.message).toMatch(/does not exist/);
    writeFileSync(join(dir, "carp-password"), "Xk3v9Qm2Lp7Rt4Wz\n", { mode: 0o644 });
    chmodSync(join(dir, "carp-password"), 0o644);
    e = errors(checkSpecFile(file, "spec.yaml", {}));
    expect(e[0]!.message).toMatch(/readable by other users \(mode 0644\)/);
    expect(e[0]!.hint).toBe(`run: chmod 600 ${join(dir, "carp-password")}`);
  });

  it("passwordEnv reads the variable; unset is an error; a bad value is reported at passwordEnv, masked", () => {
    const { file } = specWith("passwordEnv: F3S_CARP_PASSWORD");
    expect(errors(checkSpecFile(file, "spec.yaml", {}))[0]!.message).toBe("the environment variable F3S_CARP_PASSWORD is not set");
    expect(checkSpecFile(file, "spec.yaml", { F3S_CARP_PASSWORD: "Xk3v9Qm2Lp7Rt4Wz" }).model!.vip.password).toBe("Xk3v9Qm2Lp7Rt4Wz");
    const bad = errors(checkSpecFile(file, "spec.yaml", { F3S_CARP_PASSWORD: "has-a-dash-9" }));
    expect(bad.map((d) => d.pointer)).toEqual(["/storage/vip/passwordEnv"]);
    expect(JSON.stringify(bad)).not.toContain("has-a-dash-9");
  });

  it("two sources at once, or none, is an error", () => {
    const two = specWith(`password: ${password}\n      passwordEnv: F3S_CARP_PASSWORD`.replace("\n      ", "\n" + inline.exec(example)![1]!));
    expect(errors(checkSpecFile(two.file, "spec.yaml", {})).map((d) => d.code)).toEqual(["password-sources"]);
    const none = specWith("advbase: 1");
    expect(errors(checkSpecFile(none.file, "spec.yaml", {})).map((d) => d.code)).toContain("password-missing");
  });
});
