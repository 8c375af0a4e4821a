// End to end with Debian's stunnel4: the generated server and client stunnel.conf files (paths and
// addresses rewritten to an extracted tarball and loopback ports) with the generated certificates
import { spawn, spawnSync } from "node:child_process";
// carry bytes to an echo server standing in for nfsd; everything that must be refused is refused.
import { describe, expect, it, afterEach } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildCase, extract, hasTool, tempDir, privateSecrets, type Built } from "./support.js";
import { clientConf, freePort, freePortsFor, roundTrip, serverConf, servicesOf, startEcho, startStunnel, stunnelBinary, type Echo, type Stunnel } from "./stunnel-harness.js";
import { packageRoot } from "../src/paths.js";
import { runMain } from "../src/cli.js";

const available = hasTool("openssl", ["version"]) && (stunnelBinary !== undefined || hasTool("stunnel4", ["-version"]));

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

interface Server {
  /** The port of each client's own service (nfs-<client>). */
  portOf(client: string): number;
  stunnel: Stunnel;
}

async function startServer(built: Built, host: string, echo: Echo, overrides: Partial<Record<"cert" | "key", string>> = {}): Promise<Server> {
  const root = extract(join(built.outDir, `${host}.tar.gz`));
  const generated = readFileSync(join(root, "usr/local/etc/stunnel/stunnel.conf"), "utf8");
  const ports = await freePortsFor(generated);
  let conf = serverConf(generated, root, { accept: ports, connect: echo.port }, join(root, "stunnel.pid"));
  for (const [k, v] of Object.entries(overrides)) conf = conf.replace(new RegExp(`^${k} = .*$`, "gm"), `${k} = ${v}`);
  const stunnel = await startStunnel(conf, root, `server-${host}`);
  running.push(stunnel);
  return { portOf: (client) => ports[`nfs-${client}`]!, stunnel };
}

/** A client tunnel for `host` of `built`, optionally presenting another certificate file. */
async function startClient(built: Built, host: string, serverPort: number, certFile?: string): Promise<{ port: number; stunnel: Stunnel }> {
  const root = extract(join(built.outDir, `${host}.tar.gz`));
  const port = await freePort();
  let conf = clientConf(readFileSync(join(root, "etc/stunnel/stunnel.conf"), "utf8"), root, { accept: port, connect: serverPort }, join(root, "stunnel.pid"));
  if (certFile) conf = conf.replace(/^cert = .*$/m, `cert = ${certFile}`);
  const stunnel = await startStunnel(conf, root, `client-${host}`);
  running.push(stunnel);
  return { port, stunnel };
}

const payload = (s: string) => Buffer.from(`NFS ${s} ${"x".repeat(4096)}`);

async function echoServer(): Promise<Echo> {
  const echo = await startEcho();
  running.push({ stop: () => echo.close() });
  return echo;
}

describe.skipIf(!available)("stunnel end to end", () => {
  it.each([
    ["example", "f0", "r0"],
    ["example", "f1", "earth"],
    ["other", "stor-a", "k8s-a"],
  ])("%s: storage node %s's server carries client %s's tunnel to nfsd", async (c, server, client) => {
    const built = await buildCase(c);
    const echo = await echoServer();
    const s = await startServer(built, server, echo);
    const cl = await startClient(built, client, s.portOf(client));
    const base = echo.connections;
    const data = payload(client);
    const got = await roundTrip(cl.port, data);
    expect(got?.equals(data), `server log:\n${s.stunnel.log()}\nclient log:\n${cl.stunnel.log()}`).toBe(true);
    expect(echo.connections - base).toBe(1);
  });

  it("refuses a client certificate from a foreign CA", async () => {
    const built = await buildCase("example");
    const foreign = await buildCase("other");
    const echo = await echoServer();
    const s = await startServer(built, "f0", echo);
    const foreignPem = join(extract(join(foreign.outDir, "k8s-a.tar.gz")), "etc/stunnel/k8s-a-stunnel.pem");
    const cl = await startClient(built, "r0", s.portOf("r0"), foreignPem);
    expect(await roundTrip(cl.port, payload("foreign"), 3000)).toBeNull();
    expect(echo.connections).toBe(0);
  });

  it("refuses a client removed from the spec, while the others keep working", async () => {
    const secretsDir = privateSecrets("example");
    const before = await buildCase("example", { secretsDir });
    const dir = tempDir();
    const spec = join(dir, "spec.yaml");
    writeFileSync(spec, readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8").replace(/  - name: r2\n(.*\n){4}/, ""));
    const after = await buildCase("example", { secretsDir, spec });
    expect(after.result.secretChanges).toEqual(["retire client r2 (no longer in the spec): its certificate is no longer accepted"]);
    const echo = await echoServer();
    // The old server accepts r2 (so the refusal below is the removal's doing) ...
    const oldServer = await startServer(before, "f0", echo);
    const r2Old = await startClient(before, "r2", oldServer.portOf("r2"));
    expect(await roundTrip(r2Old.port, payload("r2 before"))).not.toBeNull();
    // ... the new one refuses r2's still valid certificate and serves r0.
    const newServer = await startServer(after, "f0", echo);
    // r2 has no service of its own any more; its certificate on another client's port is refused.
    expect(servicesOfServer(after, "f0")).not.toContain("nfs-r2");
    const r2 = await startClient(before, "r2", newServer.portOf("r0"));
    expect(await roundTrip(r2.port, payload("r2 after"), 3000)).toBeNull();
    expect(newServer.stunnel.log()).toMatch(/Certificate not found in local repository|certificate verify failed|CERT:/i);
    const r0 = await startClient(after, "r0", newServer.portOf("r0"));
    const data = payload("r0 after");
    expect((await roundTrip(r0.port, data))?.equals(data)).toBe(true);
  });

  it("each client's service accepts only that client's certificate and reaches nfsd from that client's own address", async () => {
    const built = await buildCase("example");
    const echo = await echoServer();
    const s = await startServer(built, "f0", echo);
    const model = built.result.checked.model!;
    // Every client through its own service: carried, and seen by "nfsd" from its own address.
    for (const c of model.clients) {
      const cl = await startClient(built, c.name, s.portOf(c.name));
      const data = payload(c.name);
      expect((await roundTrip(cl.port, data))?.equals(data), `${c.name}:\n${s.stunnel.log()}`).toBe(true);
      expect(echo.peers.at(-1), c.name).toBe(c.sourceAddress);
    }
    expect(new Set(echo.peers).size).toBe(model.clients.length);
    // Every certificate on every other client's port: refused before anything reaches nfsd.
    const reached = echo.connections;
    for (const c of model.clients) {
      for (const other of model.clients.filter((o) => o.name !== c.name)) {
        const cl = await startClient(built, c.name, s.portOf(other.name));
        expect(await roundTrip(cl.port, payload(`${c.name} as ${other.name}`), 3000), `${c.name}'s certificate on ${other.name}'s port`).toBeNull();
        await cl.stunnel.stop();
      }
    }
    expect(echo.connections).toBe(reached);
  });

  it("refuses a revoked client's old certificate and accepts its new one", async () => {
    const secretsDir = privateSecrets("example");
    const spec = join(packageRoot, "fixtures/valid/example/spec.yaml");
    const before = await buildCase("example", { secretsDir });
    const io = { stdout: () => {}, stderr: () => {}, isTTY: false, env: {}, cwd: tempDir(), now: () => new Date() };
    expect(await runMain(["pki", "revoke", spec, "r1", "--secrets", secretsDir], io)).toBe(0);
    const after = await buildCase("example", { secretsDir });
    const echo = await echoServer();
    const server = await startServer(after, "f1", echo);
    const oldR1 = await startClient(before, "r1", server.portOf("r1"));
    expect(await roundTrip(oldR1.port, payload("old r1"), 3000)).toBeNull();
    const newR1 = await startClient(after, "r1", server.portOf("r1"));
    const data = payload("new r1");
    expect((await roundTrip(newR1.port, data))?.equals(data)).toBe(true);
  });

  it("a client refuses a server presenting a client certificate of the same CA", async () => {
    const built = await buildCase("example");
    const echo = await echoServer();
    const r1Pem = join(extract(join(built.outDir, "r1.tar.gz")), "etc/stunnel/r1-stunnel.pem");
    const rogue = await startServer(built, "f0", echo, { cert: r1Pem, key: r1Pem });
    const cl = await startClient(built, "r0", rogue.portOf("r0"));
    expect(await roundTrip(cl.port, payload("to rogue"), 3000)).toBeNull();
    expect(echo.connections).toBe(0);
    expect(cl.stunnel.log()).toMatch(/CERT|verify|certificate/i);
  });
});

/** The stunnel services of a storage node's generated configuration. */
function servicesOfServer(built: Built, host: string): string[] {
  return servicesOf(readFileSync(join(extract(join(built.outDir, `${host}.tar.gz`)), "usr/local/etc/stunnel/stunnel.conf"), "utf8"));
}

describe.skipIf(!available)("TLS 1.3 only, on both generated ends", () => {
  function sClient(port: number, args: string[]) {
    return spawnSync("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, ...args], { input: "", encoding: "utf8", timeout: 10_000 });
  }

  it("the storage node's stunnel refuses TLS 1.2 (and with it every static-RSA, CBC, SHA-1 and CCM8 suite) and speaks TLS 1.3", async () => {
    const built = await buildCase("example");
    const echo = await echoServer();
    const s = await startServer(built, "f0", echo);
    const tls13 = sClient(s.portOf("r0"), ["-tls1_3"]);
    expect(tls13.stdout).toMatch(/New, TLSv1\.3, Cipher is/);
    for (const weak of [["-tls1_2"], ["-tls1_2", "-cipher", "AES128-SHA"], ["-tls1_2", "-cipher", "AES128-CCM8"]]) {
      const r = sClient(s.portOf("r0"), weak);
      expect(r.stdout, weak.join(" ")).not.toMatch(/New, TLSv1\.2/);
      expect(r.stdout + r.stderr, weak.join(" ")).toMatch(/alert protocol version/i);
    }
  });

  it("a client's stunnel will not talk to a TLS 1.2 server", async () => {
    const built = await buildCase("example");
    const root = extract(join(built.outDir, "f0.tar.gz"));
    const port = await freePort();
    let serverLog = "";
    const server = spawn("openssl", ["s_server", "-accept", String(port), "-tls1_2", "-cert", join(root, "usr/local/etc/stunnel/server-cert.pem"), "-key", join(root, "usr/local/etc/stunnel/server-key.pem")], { stdio: ["pipe", "pipe", "pipe"] });
    server.stdout!.on("data", (d) => (serverLog += d));
    server.stderr!.on("data", (d) => (serverLog += d));
    running.push({ stop: async () => void server.kill("SIGKILL") });
    for (const until = Date.now() + 5000; !serverLog.includes("ACCEPT") && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    expect(serverLog).toContain("ACCEPT");
    const cl = await startClient(built, "r0", port);
    expect(await roundTrip(cl.port, payload("to a TLS 1.2 server"), 3000)).toBeNull();
    const refused = /protocol version|unsupported protocol|wrong version|no protocols available/i;
    for (const until = Date.now() + 3000; !refused.test(cl.stunnel.log()) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    expect(cl.stunnel.log(), cl.stunnel.log()).toMatch(refused);
  });
});
