#!/usr/bin/env node
// npm run bench: f3s-gen measured against references on the same machine, in one run, as ratios of
// medians (with min and max). No timed tests: these machines are shared and noisy, ratios are not.
//   1. warm build of the example vs `node -e 0`                       goal <= 2x (issue 14)
//   2. cold build (all keys generated) vs sequential `openssl genrsa`: RSA goal <= 0.6x, and the
//      same spec with keyType ecdsa-p256 against the same reference, goal <= 0.05x
//   3. scale: 2 storage nodes, 20 datasets, 10/100/500 clients: warm build time and peak memory
//      (goal at 500: < 2 s, < 150 MB), and how both grow.
// Options: --runs N (default 9), --cold-runs N (default 5), --scale-runs N (default 5),
//          --only warm,cold,scale
import { spawnSync } from "node:child_process";
import { cpSync, chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, totalmem, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt("runs", 9));
const COLD_RUNS = Number(opt("cold-runs", 5));
const SCALE_RUNS = Number(opt("scale-runs", 5));
const ONLY = opt("only", "warm,cold,scale").split(",");
const work = mkdtempSync(join(tmpdir(), "f3s-bench-"));
const cli = join(root, "bench/run-cli.mjs");

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
const fmt = (s, unit = "ms", digits = 0) => `${s.median.toFixed(digits)} ${unit} (min ${s.min.toFixed(digits)}, max ${s.max.toFixed(digits)})`;
const log = (s) => process.stdout.write(s + "\n");

function timed(cmd, argv, opts = {}) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { encoding: "utf8", ...opts });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")} failed (${r.status}):\n${r.stderr}`);
  const rss = /maxrss_kib=(\d+)/.exec(r.stderr ?? "");
  return { ms, rssMiB: rss ? Number(rss[1]) / 1024 : NaN };
}

function privateCopy(from, to) {
  cpSync(from, to, { recursive: true });
  const fix = (p) => {
    const dir = statSync(p).isDirectory();
    chmodSync(p, dir ? 0o700 : 0o600);
    if (dir) for (const n of readdirSync(p)) fix(join(p, n));
  };
  fix(to);
}

const results = {};

if (ONLY.includes("warm")) {
  const spec = join(root, "fixtures/valid/example/spec.yaml");
  const secrets = join(work, "warm-secrets");
  privateCopy(join(root, "fixtures/valid/example/secrets"), secrets);
  const build = ["build", spec, "--out", join(work, "warm-out"), "--secrets", secrets, "--quiet"];
  timed(process.execPath, [cli, ...build]); // first run warms the file cache
  const node = [];
  const f3s = [];
  for (let i = 0; i < RUNS; i++) {
    node.push(timed(process.execPath, ["-e", "0"]).ms);
    f3s.push(timed(process.execPath, [cli, ...build]).ms);
  }
  const stages = {};
  for (let i = 0; i < RUNS; i++) {
    const r = spawnSync(process.execPath, [join(root, "bench/stages.mjs"), spec, secrets], { encoding: "utf8" });
    for (const [k, v] of Object.entries(JSON.parse(r.stdout))) (stages[k] ??= []).push(v);
  }
  results.warm = { node: stats(node), f3s: stats(f3s), ratio: median(f3s) / median(node), stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, stats(v)])) };
  log(`warm build of the example: ${fmt(results.warm.f3s)}`);
  log(`node -e 0:                 ${fmt(results.warm.node)}`);
  log(`ratio (medians):           ${results.warm.ratio.toFixed(2)}x   goal <= 2x`);
  for (const [k, v] of Object.entries(results.warm.stages)) log(`  ${k.padEnd(14)} ${fmt(v, "ms", 1)}`);
}

if (ONLY.includes("cold")) {
  const spec = join(root, "fixtures/valid/example/spec.yaml");
  const model = parse(readFileSync(spec, "utf8"));
  const keys = 2 + model.clients.length;
  const bits = model.pki.keyBits ?? 4096;
  const f3s = [];
  const ecdsa = [];
  const openssl = [];
  const ecdsaSpec = join(work, "ecdsa.yaml");
  writeFileSync(ecdsaSpec, readFileSync(spec, "utf8").replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256"));
  for (let i = 0; i < COLD_RUNS; i++) {
    const dir = mkdtempSync(join(work, "cold-"));
    f3s.push(timed(process.execPath, [cli, "build", spec, "--out", join(dir, "out"), "--secrets", join(dir, "secrets"), "--quiet"]).ms);
    ecdsa.push(timed(process.execPath, [cli, "build", ecdsaSpec, "--out", join(dir, "out-ec"), "--secrets", join(dir, "secrets-ec"), "--quiet"]).ms);
    const t = process.hrtime.bigint();
    for (let k = 0; k < keys; k++) timed("openssl", ["genrsa", "-out", join(dir, `key${k}.pem`), String(bits)]);
    openssl.push(Number(process.hrtime.bigint() - t) / 1e6);
    rmSync(dir, { recursive: true, force: true });
  }
  results.cold = { keys, bits, f3s: stats(f3s), ecdsa: stats(ecdsa), openssl: stats(openssl), ratio: median(f3s) / median(openssl), ecdsaRatio: median(ecdsa) / median(openssl) };
  log(`cold build of the example (${keys} RSA-${bits} keys): ${fmt(results.cold.f3s)}`);
  log(`cold build, keyType ecdsa-p256 (${keys} keys):   ${fmt(results.cold.ecdsa)}`);
  log(`openssl genrsa ${bits}, ${keys} times in a row:     ${fmt(results.cold.openssl)}`);
  log(`ratio RSA (medians):   ${results.cold.ratio.toFixed(2)}x   goal <= 0.6x`);
  log(`ratio ECDSA (medians): ${results.cold.ecdsaRatio.toFixed(3)}x  goal <= 0.05x`);
}

/** The example scaled up: 2 storage nodes, `clients` clients, 20 replicated datasets, 2048-bit keys. */
function scaleSpec(clients) {
  const s = parse(readFileSync(join(root, "examples/f3s.example.yaml"), "utf8"));
  s.pki.keyBits = 2048;
  s.storage.vip.password = "BenchPassword42x";
  s.storage.replication.datasets = Array.from({ length: 20 }, (_, i) => ({ name: i === 0 ? s.storage.nfs.dataset : `zdata/enc/ds${i}`, interval: `${1 + (i % 10)}m`, keep: 10 + i }));
  s.storage.encryption.roots = [{ dataset: "zdata/enc", key: "zdata" }];
  s.clients = Array.from({ length: clients }, (_, i) => ({
    name: `client${i}`,
    mounts: [{ export: "/data/nfs/k3svolumes", mountpoint: "/data/nfs/k3svolumes" }, { export: `/data/nfs/home${i % 7}`, mountpoint: "/home/shared" }],
    restartStuckPods: i % 2 === 0,
    redirectNfsPort: i % 10 === 0,
  }));
  return stringify(s);
}

if (ONLY.includes("scale")) {
  results.scale = [];
  for (const clients of [10, 100, 500]) {
    const dir = mkdtempSync(join(work, `scale-${clients}-`));
    const spec = join(dir, "spec.yaml");
    writeFileSync(spec, scaleSpec(clients));
    const build = ["build", spec, "--out", join(dir, "out"), "--secrets", join(dir, "secrets"), "--quiet"];
    const cold = timed(process.execPath, [cli, ...build]);
    const runs = Array.from({ length: SCALE_RUNS }, () => timed(process.execPath, [cli, ...build]));
    const row = { clients, hosts: clients + 2, coldMs: cold.ms, warm: stats(runs.map((r) => r.ms)), rssMiB: stats(runs.map((r) => r.rssMiB)) };
    results.scale.push(row);
    log(`scale ${String(clients).padStart(3)} clients: warm ${fmt(row.warm)}, peak memory ${fmt(row.rssMiB, "MiB")} (cold, generating ${clients + 2} keys: ${(cold.ms / 1000).toFixed(1)} s)`);
    rmSync(dir, { recursive: true, force: true });
  }
  const [a, b, c] = results.scale;
  const per = (x, y) => (y.warm.median - x.warm.median) / (y.clients - x.clients);
  log(`  time per added client: 10->100 ${per(a, b).toFixed(2)} ms, 100->500 ${per(b, c).toFixed(2)} ms (linear: equal; better: falling)`);
  log(`  500 clients: ${(c.warm.median / 1000).toFixed(2)} s (goal < 2 s), ${c.rssMiB.median.toFixed(0)} MiB (goal < 150 MB)`);
}

log(`\nmachine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; ${new Date().toISOString().slice(0, 10)}`);
writeFileSync(join(root, "bench/last-run.json"), JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, results }, null, 2) + "\n");
rmSync(work, { recursive: true, force: true });
