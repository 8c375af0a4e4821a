// shellcheck over every generated script for a spread of valid specs, not only the two fixtures: one
// dataset, one encryption root and one pool (a one-element list is where SC2041 hid), many of each,
// every client OS, several mounts per client, no members and several, failback off, squash, a key
// stick, a kubeconfig with a quote in its path, and override drop-ins (one for an escaped unit name).
// Each script is checked in the dialect its shebang names (FreeBSD's /bin/sh as POSIX sh).
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse, stringify } from "yaml";
import { checkSpecText } from "../src/spec/index.js";
import { hasErrors } from "../src/diag/diagnostic.js";
import { loadTemplates, renderAll } from "../src/render/engine.js";
import { packageRoot, templatesDir } from "../src/paths.js";
import type { Secrets } from "../src/pki/secrets.js";
import { hasTool, tempDir } from "./support.js";

type Spec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const example = (): Spec => parse(readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8"));

/** Stand-in secrets: rendering only places the PEM text (and keys the MANIFEST's MAC with the CA key). */
const pair = { certPem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", keyPem: "KEY" };
const secrets = {
  ca: pair,
  trust: [pair.certPem],
  alsoAllowed: new Map(),
  server: pair,
  clients: new (class extends Map<string, typeof pair> {
    override get() {
      return pair;
    }
  })(),
  zfsKeys: new (class extends Map<string, Buffer> {
    override get() {
      return Buffer.alloc(32);
    }
  })(),
} as unknown as Secrets;

const variants: [string, (s: Spec) => void][] = [
  [
    "one of everything: one dataset, one encryption root, one pool, one Debian client, no members, failback off",
    (s) => {
      s.storage.replication.datasets = s.storage.replication.datasets.slice(0, 1);
      s.storage.encryption.roots = s.storage.encryption.roots.slice(0, 1);
      s.storage.failback = { enabled: false };
      s.clients = [{ name: "solo", os: "debian", mounts: [{ export: "/data/nfs", mountpoint: "/mnt/nfs" }] }];
      delete s.members;
    },
  ],
  [
    "many: four datasets in two pools, every client OS, several mounts per client, two members, squash, a key stick",
    (s) => {
      s.storage.replication.datasets.push({ name: "zdata/enc/media", interval: "1h", keep: 24 }, { name: "zdata/enc/backup", interval: "1d", keep: 7 });
      s.storage.nfs.rootAccess = "squash";
      s.storage.encryption.keyDevice = "/dev/da1";
      s.storage.encryption.keyFsType = "ufs";
      s.clients = ["rocky", "fedora", "debian", "ubuntu"].map((os, i) => ({
        name: `${os}-${i}`,
        os,
        redirectNfsPort: i % 2 === 0,
        restartStuckPods: i < 2,
        ...(i === 1 ? { kubeconfig: "/etc/rancher/k3s/agent's kubeconfig.yaml" } : {}),
        mounts: [
          { export: "/data/nfs/k3svolumes", mountpoint: "/data/nfs/k3svolumes" },
          { export: "/data/nfs/shared", mountpoint: "/srv/shared-data", options: ["hard", "noatime"] },
        ],
      }));
      s.members = [{ name: "m1" }, { name: "m2", sshHost: "10.0.0.9" }];
      // Drop-ins from overrides are named in the clients' activation (its units' stamp).
      s.overrides = [
        { roles: ["client"], files: [{ path: "/etc/systemd/system/srv-shared\\x2ddata.mount.d/10-timeout.conf", content: "[Mount]\nTimeoutSec=90\n" }] },
        { hosts: ["rocky-0"], files: [{ path: "/etc/systemd/system/nfs-mount-monitor.service.d/10-nice.conf", content: "[Service]\nNice=5\n" }] },
      ];
    },
  ],
];

describe.skipIf(!hasTool("shellcheck"))("shellcheck over a spread of specs", () => {
  const templates = loadTemplates(templatesDir);
  it.each(variants)("%s", (_name, change) => {
    const spec = example();
    change(spec);
    const checked = checkSpecText("spread.yaml", stringify(spec));
    expect(hasErrors(checked.diagnostics), JSON.stringify(checked.diagnostics, null, 2)).toBe(false);
    const dir = tempDir();
    const scripts: [string, string][] = [];
    for (const { host, files } of renderAll(checked.model!, secrets, templates)) {
      for (const f of files) {
        const text = f.content.toString("utf8");
        const shebang = /^#!\/bin\/(sh|bash)\n/.exec(text);
        if (!shebang) continue;
        const file = join(dir, host.name, f.path);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, text);
        scripts.push([file, shebang[1]!]);
      }
    }
    expect(scripts.length).toBeGreaterThan(10);
    for (const [file, dialect] of scripts) {
      const r = spawnSync("shellcheck", ["--shell", dialect, "--severity", "style", file], { encoding: "utf8" });
      expect(r.status, `${file.slice(dir.length + 1)}\n${r.stdout}`).toBe(0);
    }
  });
});
