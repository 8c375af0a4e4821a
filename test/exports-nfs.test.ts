// Per-client exports on a real NFS server: what a client certificate reaches, end to end with real
// programs. nfs-ganesha (a userspace NFSv4 server) runs in a network namespace of its own on
// 127.0.0.1:2049 with the storage node's generated /etc/exports translated to its syntax (below);
// in front of it the generated stunnel server (every client's service, `local =` its own address),
// and for each client its generated stunnel client with its own certificate; libnfs's userspace
// NFSv4 client (nfs-ls, nfs-cat, nfs-cp from libnfs-utils) goes through that client's tunnel. The
// kernel's NFS client cannot run here; the booted guest (test/vm.test.ts) mounts through knfsd.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { buildCase, extract, hasTool, tempDir, type Built } from "./support.js";
import { clientConf, freePort, freePortsFor, serverConf, startStunnel, stunnelBinary } from "./stunnel-harness.js";
import { packageRoot } from "../src/paths.js";
import { maskBits, readExports } from "./exports-file.js";
import type { Model } from "../src/spec/model.js";

const isRoot = process.getuid?.() === 0;
if (process.env.CI && !isRoot) throw new Error("the NFS server test runs as root in CI (network namespace, tmpfs, ganesha)");
const available =
  isRoot &&
  stunnelBinary !== undefined &&
  hasTool("ganesha.nfsd", ["-v"]) &&
  hasTool("nfs-ls", ["--help"]) &&
  hasTool("ip", ["-V"]) &&
  hasTool("unshare", ["--version"]);

/** One line of FreeBSD's exports(5) as generated: the paths, -maproot, and -network with its -mask as a prefix. */
interface ExportLine {
  paths: string[];
  maproot: string;
  network: string;
  prefix: number;
}

/** The generated /etc/exports (split by test/exports-file.ts): the V4: root and the export lines. */
function parseExports(text: string): { v4Root: string; lines: ExportLine[] } {
  const { v4, lines } = readExports(text);
  return {
    v4Root: v4[0]![1]!,
    lines: lines.map((l) => ({ paths: l.dirs, maproot: l.options.get("maproot")!, network: l.options.get("network")!, prefix: maskBits(l.options.get("mask")!) })),
  };
}

const within = (path: string, dir: string) => path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);

/**
 * The exports in nfs-ganesha's syntax, with FreeBSD's meaning: one EXPORT per file system on the
 * storage node (the NFS root's, and each export dataset's; Pseudo: its path under the V4: root, as
 * clients name it), because FreeBSD applies a line to the whole file system its paths are on
 * (exports(5): with NFSv4 every line counts as -alldirs; mountd.c hands a line to the mount of its
 * file system) and never beyond it into another (a file system below has lines of its own):
 * - a client with a line on a file system gets all of it (RW, its -maproot);
 * - a file system on the way from the V4: root to one of the client's lines gets metadata-only
 *   access: NFSv4 clients look up their way to their export (FreeBSD lets them traverse), but read
 *   and write nothing there;
 * - everything else: no access (ganesha's Access_Type = None, like a host mountd does not list).
 */
export function ganeshaConfig(exportsText: string, fileSystems: string[], dataDir: string, recoveryDir: string): string {
  const { v4Root, lines } = parseExports(exportsText);
  const all = [v4Root, ...fileSystems].sort();
  const fsOf = (p: string) => all.filter((f) => within(p, f)).sort((a, b) => b.length - a.length)[0]!;
  for (const l of lines) {
    // mountd (get_exportlist_one) drops a line whose directories are on different file systems.
    expect(new Set(l.paths.map(fsOf)).size, `${l.paths.join(" ")}: one file system per line`).toBe(1);
  }
  const blocks = all.map((fs, i) => {
    const clients = lines.flatMap((l) => {
      const squash = l.maproot === "root" ? "no_root_squash" : "root_squash";
      const who = `Clients = ${l.network}/${l.prefix}`;
      if (fsOf(l.paths[0]!) === fs) return [`  CLIENT { ${who}; Access_Type = RW; Squash = ${squash}; }`];
      if (l.paths.some((p) => within(p, fs))) return [`  CLIENT { ${who}; Access_Type = MDONLY_RO; Squash = root_squash; }`];
      return [];
    });
    const rel = posix.relative(v4Root, fs);
    return [
      "EXPORT {",
      `  Export_Id = ${i + 1}; Path = ${join(dataDir, rel)}; Pseudo = /${rel};`,
      "  Protocols = 4; Transports = TCP; Access_Type = None; Squash = root_squash;",
      // FreeBSD's nobody (-maproot=nobody): uid and gid 65534.
      "  Anonymous_Uid = 65534; Anonymous_Gid = 65534;",
      "  FSAL { Name = VFS; }",
      ...clients,
      "}",
    ].join("\n");
  });
  return [
    "NFS_CORE_PARAM { Protocols = 4; NFS_Port = 2049; Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }",
    `NFSV4 { Graceless = true; Only_Numeric_Owners = true; RecoveryRoot = ${recoveryDir}; }`,
    ...blocks,
  ].join("\n") + "\n";
}

// The example with two kinds of client: the workers r0-r2 (k3svolumes) squashed, the laptop (the
// whole NFS root) with root.
const exampleSpec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");
const squashedWorkers = exampleSpec.replace(/^(  - name: r\d)\n/gm, "$1\n    rootAccess: squash\n").replace(/^(  - name: earth\b.*)\n/m, "$1\n    rootAccess: root\n");
// Two ways the same cluster can hold its exports: as directories of the NFS dataset (the example as
// written, the blog's way), or each a dataset of its own (storage.nfs.exportDatasets).
const modes = [
  { name: "each export a dataset of its own (exportDatasets)", datasets: true, spec: squashedWorkers.replace(/^( +)tlsPort: .*$/m, "$&\n$1exportDatasets: true") },
  { name: "exports as directories of the NFS dataset", datasets: false, spec: squashedWorkers },
];

describe.skipIf(!available).each(modes)("per-client exports on a real NFS server (nfs-ganesha) behind the generated tunnels: $name", ({ datasets, spec }) => {
  const ns = `f3s-nfs-${process.pid}-${datasets ? "ds" : "dir"}`;
  /** Runs a command inside the namespace. */
  const nsPrefix = ["ip", "netns", "exec", ns];
  const running: { stop(): Promise<void> }[] = [];
  let built: Built;
  let model: Model;
  let data = "";
  let ganesha: ChildProcess | undefined;
  let ganeshaLogFile = "";
  const ganeshaLog = () => {
    try {
      return readFileSync(ganeshaLogFile, "utf8");
    } catch {
      return "";
    }
  };
  /** Each client's tunnel: the local port of its own stunnel client. */
  const tunnelOf = new Map<string, number>();
  /** The storage node's port of each service (nfs-<client>). */
  let servicePorts: Record<string, number> = {};

  /** Runs a libnfs tool inside the namespace (as root, the identity root squashing is about). */
  function nfs(tool: "nfs-ls" | "nfs-cat" | "nfs-cp", port: number, path: string, local?: string) {
    const url = `nfs://127.0.0.1${path}?version=4&nfsport=${port}`;
    const args = tool === "nfs-cp" ? [local!, url] : [url];
    const r = spawnSync("ip", [...nsPrefix.slice(1), tool, ...args], { encoding: "utf8", timeout: 30_000 });
    return { ok: r.status === 0, out: r.stdout, err: `${r.stdout}${r.stderr}${r.error ?? ""}` };
  }

  /** A client's generated tunnel (its own certificate) to a service port; returns its local port. */
  async function startTunnel(client: string, servicePort: number): Promise<number> {
    const root = extract(join(built.outDir, `${client}.tar.gz`));
    const port = await freePort();
    const conf = clientConf(readFileSync(join(root, "etc/stunnel/stunnel.conf"), "utf8"), root, { accept: port, connect: servicePort }, join(root, "stunnel.pid"));
    running.push(await startStunnel(conf, root, `client-${client}-${servicePort}`, nsPrefix));
    return port;
  }

  async function until(what: string, ok: () => boolean, ms: number) {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`${what} within ${ms} ms; ganesha's log:\n${ganeshaLog()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  beforeAll(async () => {
    const dir = tempDir("f3s-nfs-");
    writeFileSync(join(dir, "spec.yaml"), spec);
    built = await buildCase("example", { spec: join(dir, "spec.yaml") });
    model = built.result.checked.model!;
    const storage = extract(join(built.outDir, `${model.primary.name}.tar.gz`));

    // The NFS root's contents on a tmpfs (ganesha's VFS backend needs file handles, which tmpfs
    // has whatever the test machine's /tmp is): the workers' volumes and the laptop's own files.
    data = join(dir, "data");
    mkdirSync(data);
    expect(spawnSync("mount", ["-t", "tmpfs", "-o", "mode=0755", "tmpfs", data]).status).toBe(0);
    for (const c of model.clients) for (const e of c.exports) mkdirSync(join(data, posix.relative(model.nfs.root, e)), { recursive: true });
    mkdirSync(join(data, "home"));
    writeFileSync(join(data, "home/laptop-only.txt"), "the laptop's own\n");
    writeFileSync(join(data, "k3svolumes/shared.txt"), "a volume\n");
    chmodSync(join(data, "k3svolumes"), 0o777); // squashed root (nobody) may write here

    const conf = join(dir, "ganesha.conf");
    mkdirSync(join(dir, "recovery"));
    const fileSystems = model.nfs.fileSystems.map((f) => f.path);
    expect(fileSystems.length > 0, "export datasets in this mode").toBe(datasets);
    writeFileSync(conf, ganeshaConfig(readFileSync(join(storage, "etc/exports"), "utf8"), fileSystems, data, join(dir, "recovery")));
    expect(spawnSync("ip", ["netns", "add", ns]).status).toBe(0);
    expect(spawnSync("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]).status).toBe(0);
    // Its own /run keeps ganesha away from the machine's rpcbind and D-Bus (NFSv4 needs neither).
    ganeshaLogFile = join(dir, "ganesha.log");
    const script = 'mount -t tmpfs tmpfs /run && exec ganesha.nfsd -F -f "$1" -L "$2" -p "$3" -N NIV_EVENT';
    ganesha = spawn("ip", [...nsPrefix.slice(1), "unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", conf, ganeshaLogFile, join(dir, "ganesha.pid")], { stdio: "ignore" });
    await until("ganesha listens on 2049", () => ganesha!.exitCode === null && spawnSync("ip", ["netns", "exec", ns, "ss", "-Htln", "sport = :2049"], { encoding: "utf8" }).stdout.includes("2049"), 30_000);

    // The storage node's stunnel as generated (each client's service, local = its address) and a
    // tunnel per client with its own certificate, all inside the namespace.
    const generated = readFileSync(join(storage, "usr/local/etc/stunnel/stunnel.conf"), "utf8");
    servicePorts = await freePortsFor(generated);
    running.push(await startStunnel(serverConf(generated, storage, { accept: servicePorts, connect: 2049 }, join(storage, "stunnel.pid")), storage, "server", nsPrefix));
    for (const c of model.clients) tunnelOf.set(c.name, await startTunnel(c.name, servicePorts[c.service]!));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop()));
    if (ganesha && ganesha.exitCode === null) {
      ganesha.kill("SIGTERM");
      await Promise.race([new Promise((r) => ganesha!.on("exit", r)), new Promise((r) => setTimeout(r, 10_000))]);
      if (ganesha.exitCode === null && ganesha.signalCode === null) ganesha.kill("SIGKILL");
    }
    spawnSync("ip", ["netns", "del", ns]);
    if (data) spawnSync("umount", [data]);
  });

  const worker = () => model.clients.find((c) => c.maproot === "nobody")!;
  const laptop = () => model.clients.find((c) => c.maproot === "root")!;
  const v4 = (path: string) => `/${posix.relative(model.nfs.root, path)}`;

  it("serves each client its own exports through its own tunnel, from its own address", () => {
    for (const c of model.clients) {
      for (const e of c.exports) {
        const r = nfs("nfs-ls", tunnelOf.get(c.name)!, v4(e));
        expect(r.ok, `${c.name} lists ${e}: ${r.err}\n${ganeshaLog()}`).toBe(true);
      }
    }
    const r = nfs("nfs-cat", tunnelOf.get(laptop().name)!, "/home/laptop-only.txt");
    expect(r.out).toBe("the laptop's own\n");
    // An export below the laptop's (the workers' volumes) is the laptop's too.
    expect(nfs("nfs-cat", tunnelOf.get(laptop().name)!, "/k3svolumes/shared.txt").out).toBe("a volume\n");
    expect(nfs("nfs-cat", tunnelOf.get(worker().name)!, "/k3svolumes/shared.txt").out).toBe("a volume\n");
  });

  it.runIf(datasets)("gives a worker's certificate nothing of the laptop's: no read, no write", () => {
    for (const c of model.clients.filter((c) => !c.exports.includes(model.nfs.root))) {
      const port = tunnelOf.get(c.name)!;
      const read = nfs("nfs-cat", port, "/home/laptop-only.txt");
      expect(read.ok, `${c.name} read the laptop's file: ${read.out}`).toBe(false);
      expect(read.out).not.toContain("the laptop's own");
      const local = join(tempDir(), "probe");
      writeFileSync(local, "intruder\n");
      const write = nfs("nfs-cp", port, "/home/from-worker.txt", local);
      expect(write.ok, `${c.name} wrote into the laptop's export: ${write.err}`).toBe(false);
      expect(() => statSync(join(data, "home/from-worker.txt"))).toThrow();
    }
  });

  // What f3s-activate and f3s-status warn about: FreeBSD grants a worker's line the whole NFS
  // dataset, its export being a directory of it.
  it.runIf(!datasets)("lets a worker's certificate read the laptop's files when the exports are directories of one dataset", () => {
    for (const c of model.clients.filter((c) => !c.exports.includes(model.nfs.root))) {
      expect(nfs("nfs-cat", tunnelOf.get(c.name)!, "/home/laptop-only.txt").out, c.name).toBe("the laptop's own\n");
    }
  });

  it("squashes root where the spec says and keeps it where the spec grants it", () => {
    const local = join(tempDir(), "probe");
    writeFileSync(local, "written as root\n");
    for (const c of [worker(), laptop()]) {
      const r = nfs("nfs-cp", tunnelOf.get(c.name)!, `/k3svolumes/from-${c.name}.txt`, local);
      expect(r.ok, `${c.name}: ${r.err}\n${ganeshaLog()}`).toBe(true);
      const owner = statSync(join(data, `k3svolumes/from-${c.name}.txt`)).uid;
      expect(owner, `${c.name} (rootAccess ${c.maproot})`).toBe(c.maproot === "root" ? 0 : 65534);
    }
  });

  it("grants the storage node's own loopback address nothing, and refuses a certificate on another client's service", async () => {
    // Straight to nfsd from 127.0.0.1 (what every client arrived as before per-client services).
    for (const path of ["/", "/k3svolumes", "/home"]) expect(nfs("nfs-ls", 2049, path).ok, path).toBe(false);
    // The laptop's certificate on a worker's service: refused by stunnel, nothing reaches nfsd.
    const misdirected = await startTunnel(laptop().name, servicePorts[worker().service]!);
    for (const path of ["/k3svolumes", "/home"]) expect(nfs("nfs-ls", misdirected, path).ok, path).toBe(false);
  });
});
