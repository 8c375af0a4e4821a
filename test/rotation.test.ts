// Rolling the CA without an outage, proven with the real stunnel (Debian's stunnel4) on loopback:
// the three stages of `pki rotate-ca` are built as four releases (before, trust, reissue, finish),
// and for every stage a storage node's server tunnel and a client's tunnel from the releases on
// either side of it are run against each other, as a rollout leaves them (storage nodes first, but
// a client may still run the stage before, and a host that failed the stage after). Each pair must
// carry bytes, both ways verified: the client's certificate on the server's allow-list and chain,
// the server's certificate on the client's trust and name.
// Where a host must restart: the storage node's stunnel at every stage (its CA file changes, and a
// reload cannot re-read the key after dropping privileges: stunnel-lifecycle.test.ts), which ends
// every TLS session; hard mounts reconnect at once, and the reconnect is shown to succeed. A
// client's stunnel only reloads (it runs as root): its established session survives every stage.
import { describe, expect, it, afterEach } from "vitest";
import { connect, type Socket } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { runMain } from "../src/cli.js";
import { extract, hasTool, tempDir } from "./support.js";
import { keep, release } from "./host-harness.js";
import { clientConf, freePort, roundTrip, serverConf, startEcho, startStunnel, stunnelBinary, type Stunnel } from "./stunnel-harness.js";

const available = hasTool("openssl", ["version"]) && stunnelBinary !== undefined;
const spec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8").replace(/^( +)keyBits: .*$/m, "$1keyType: ecdsa-p256");
const STAGES = ["before", "trust", "reissue", "finish"] as const;

const running: { stop(): Promise<void> | void }[] = [];
afterEach(async () => {
  for (const p of running.splice(0).reverse()) await p.stop();
});

/** The four releases of a rotation: out/ kept after the build of each stage. */
async function rotationReleases(): Promise<string[]> {
  const secrets = join(tempDir(), "secrets");
  const out = join(tempDir(), "out");
  const specPath = join(tempDir(), "spec.yaml");
  writeFileSync(specPath, spec);
  const io = { stdout: () => {}, stderr: () => {}, isTTY: false, env: {}, cwd: tempDir(), now: () => new Date() };
  const outs = [keep(await release(spec, out, secrets))];
  for (let stage = 1; stage <= 3; stage++) {
    expect(await runMain(["pki", "rotate-ca", specPath, "--secrets", secrets], io)).toBe(0);
    outs.push(keep(await release(spec, out, secrets)));
  }
  return outs;
}

async function server(out: string, echoPort: number, at?: number): Promise<{ port: number; stunnel: Stunnel }> {
  const root = extract(join(out, "f0.tar.gz"));
  const port = at ?? (await freePort());
  const stunnel = await startStunnel(serverConf(readFileSync(join(root, "usr/local/etc/stunnel/stunnel.conf"), "utf8"), root, { accept: { "nfs-r0": port }, connect: echoPort }, join(root, "s.pid")), root, "server");
  running.push(stunnel);
  return { port, stunnel };
}

/** A client tunnel; its configuration file can be switched to another release's and reloaded. */
async function client(out: string, serverPort: number) {
  const port = await freePort();
  const dir = tempDir();
  const confFor = (o: string) => {
    const root = extract(join(o, "r0.tar.gz"));
    return clientConf(readFileSync(join(root, "etc/stunnel/stunnel.conf"), "utf8"), root, { accept: port, connect: serverPort }, join(dir, "c.pid"));
  };
  const stunnel = await startStunnel(confFor(out), dir, "client");
  running.push(stunnel);
  return {
    port,
    stunnel,
    /** Switches to another release's files and reloads (SIGHUP), as the client's activation does. */
    reloadWith(o: string) {
      writeFileSync(join(dir, "client.conf"), confFor(o) + "\n");
      process.kill(Number(readFileSync(join(dir, "c.pid"), "utf8").trim()), "SIGHUP");
    },
  };
}

const payload = (s: string) => Buffer.from(`NFS ${s} ${"x".repeat(2048)}`);

function session(port: number): Promise<{ socket: Socket; echo(data: string): Promise<string | null> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      let buffer = "";
      socket.on("data", (d) => (buffer += d.toString()));
      resolve({
        socket,
        echo: async (data) => {
          buffer = "";
          socket.write(data);
          const until = Date.now() + 5000;
          while (Date.now() < until && buffer.length < data.length && !socket.destroyed) await new Promise((r) => setTimeout(r, 20));
          return buffer.length >= data.length ? buffer : null;
        },
      });
    });
    socket.once("error", reject);
  });
}

describe.skipIf(!available)("pki rotate-ca in three stages, with the real stunnel", () => {
  it("at every stage, a server and a client from that stage or the one before accept each other, in either order; two stages apart they do not", { timeout: 300_000 }, async () => {
    const outs = await rotationReleases();
    const echo = await startEcho();
    running.push({ stop: () => echo.close() });
    for (let s = 1; s < STAGES.length; s++) {
      for (const [serverStage, clientStage] of [[s, s - 1], [s - 1, s], [s, s]] as const) {
        const srv = await server(outs[serverStage]!, echo.port);
        const cli = await client(outs[clientStage]!, srv.port);
        const what = `server at ${STAGES[serverStage]}, client at ${STAGES[clientStage]}`;
        const got = await roundTrip(cli.port, payload(what));
        expect(got?.toString(), `${what}\nserver:\n${srv.stunnel.log()}\nclient:\n${cli.stunnel.log()}`).toBe(payload(what).toString());
        for (const p of running.splice(1).reverse()) await p.stop();
      }
    }
    // The check can fail: a client that skipped the middle stages is refused by the last.
    const srv = await server(outs[3]!, echo.port);
    const cli = await client(outs[0]!, srv.port);
    expect(await roundTrip(cli.port, payload("skipped"), 3000)).toBeNull();
  });

  it("through a whole rotation deployed in order (storage node, then client, each stage), the client's session survives its reloads and reconnects after each server restart", { timeout: 300_000 }, async () => {
    const outs = await rotationReleases();
    const echo = await startEcho();
    running.push({ stop: () => echo.close() });
    let srv = await server(outs[0]!, echo.port);
    const cli = await client(outs[0]!, srv.port);
    let mount = await session(cli.port);
    expect(await mount.echo("before")).toBe("before");
    for (let s = 1; s < STAGES.length; s++) {
      // The storage node first: its stunnel restarts, every session ends; the mount connects again.
      await srv.stunnel.stop();
      await new Promise<void>((r) => (mount.socket.destroyed ? r() : mount.socket.once("close", () => r())));
      srv = await server(outs[s]!, echo.port, srv.port);
      mount = await session(cli.port);
      expect(await mount.echo(`server at ${STAGES[s]}`), `the client at ${STAGES[s - 1]} reconnects to the server at ${STAGES[s]}\n${srv.stunnel.log()}`).toBe(`server at ${STAGES[s]}`);
      // Then the client: a reload, under which the established session goes on.
      cli.reloadWith(outs[s]!);
      await new Promise((r) => setTimeout(r, 500));
      expect(await mount.echo(`client at ${STAGES[s]}`), `the session after the client reloaded to ${STAGES[s]}`).toBe(`client at ${STAGES[s]}`);
      expect((await roundTrip(cli.port, payload(STAGES[s]!)))?.toString(), "a new connection with the reloaded files").toBe(payload(STAGES[s]!).toString());
    }
  });
});
