// Runs the generated stunnel configurations for real, on loopback only: paths are rewritten to an
// extracted tarball, addresses to free 127.0.0.1 ports, and an echo server stands in for nfsd.
// Every wait is bounded and every process is stopped by the test that started it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, connect, type Server } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** The real stunnel as an absolute path: the sandboxes put a stand-in named stunnel4 first on PATH. */
export const stunnelBinary = ["stunnel4", "stunnel"]
  .map((b) => spawnSync("sh", ["-c", `command -v ${b}`], { encoding: "utf8" }).stdout.trim())
  .find((path) => path.startsWith("/"));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export interface Echo {
  port: number;
  connections: number;
  /** The source address of each connection, in order: which client's service reached "nfsd". */
  peers: string[];
  close(): Promise<void>;
}

export async function startEcho(): Promise<Echo> {
  const echo = { port: 0, connections: 0, peers: [] } as unknown as Echo;
  const server: Server = createServer((socket) => {
    echo.connections++;
    echo.peers.push(socket.remoteAddress ?? "");
    socket.on("data", (d) => socket.write(d));
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  echo.port = (server.address() as { port: number }).port;
  echo.close = () => new Promise<void>((r) => server.close(() => r()));
  return echo;
}

/** Rewrites `key = value` lines; other lines (and the section order) stay as generated. */
function rewrite(conf: string, replace: Record<string, string | null>, prepend: string[]): string {
  const lines = conf.split("\n").flatMap((line) => {
    const m = /^(\w+) = (.*)$/.exec(line);
    if (!m || !(m[1]! in replace)) return [line];
    const value = replace[m[1]!];
    return value === null ? [] : [`${m[1]} = ${value}`];
  });
  return [...prepend, ...lines].join("\n");
}

/** Makes every absolute path of a PEM file point into the extracted root. */
function rootPaths(conf: string, root: string): string {
  return conf.replace(/^(cert|key|CAfile) = (\/.*)$/gm, (_l, k: string, p: string) => `${k} = ${join(root, p)}`);
}

/** The service sections of a stunnel configuration, in order: the storage node has one per client. */
export function servicesOf(conf: string): string[] {
  return [...conf.matchAll(/^\[([^\]]+)\]$/gm)].map((m) => m[1]!);
}

/** A free loopback port for each service of a server configuration. */
export async function freePortsFor(conf: string): Promise<Record<string, number>> {
  const ports: Record<string, number> = {};
  for (const service of servicesOf(conf)) ports[service] = await freePort();
  return ports;
}

/**
 * The storage node's configuration on loopback: each service's accept on its port from `accept`
 * (a service it does not name is dropped), connect to the stand-in for nfsd. `local =` stays as
 * generated: Linux routes all of 127.0.0.0/8 to lo, so each service connects from its client's
 * own address (127.0.1.<slot>) as it does on lo0's alias.
 */
export function serverConf(generated: string, root: string, ports: { accept: Record<string, number>; connect: number }, pidFile: string): string {
  let section = "";
  const kept = generated.split("\n").filter((line) => {
    const m = /^\[([^\]]+)\]$/.exec(line);
    if (m) section = m[1]!;
    return section === "" || section in ports.accept;
  });
  const lines = kept.map((line) => {
    const m = /^\[([^\]]+)\]$/.exec(line);
    if (m) section = m[1]!;
    return /^accept = /.test(line) ? `accept = 127.0.0.1:${ports.accept[section]}` : line;
  });
  // setuid/setgid name the FreeBSD port's user; the test runs without dropping privileges.
  const conf = rewrite(lines.join("\n"), { setuid: null, setgid: null, pid: pidFile, connect: `127.0.0.1:${ports.connect}` }, ["foreground = yes"]);
  return rootPaths(conf, root);
}

export function clientConf(generated: string, root: string, ports: { accept: number; connect: number }, pidFile: string): string {
  const conf = rewrite(generated, { accept: `127.0.0.1:${ports.accept}`, connect: `127.0.0.1:${ports.connect}` }, ["foreground = yes", `pid = ${pidFile}`]);
  return rootPaths(conf, root);
}

export interface Stunnel {
  log(): string;
  stop(): Promise<void>;
}

/**
 * Waits for stunnel's own "Configuration successful" (logged once it listens) rather than probing
 * the port: a probe of a client tunnel would open a real connection to the server.
 */
async function waitForReady(log: () => string, exited: () => boolean, deadline: number): Promise<boolean> {
  while (Date.now() < deadline && !exited()) {
    if (log().includes("Configuration successful")) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/** Starts stunnel on `conf`; `prefix` runs it through another command (e.g. `ip netns exec NS`). */
export async function startStunnel(conf: string, dir: string, name: string, prefix: string[] = []): Promise<Stunnel> {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, conf + "\n");
  let log = "";
  const [command, ...args] = [...prefix, stunnelBinary!, file];
  const proc: ChildProcess = spawn(command!, args, { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout!.on("data", (d) => (log += d));
  proc.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<void>((r) => proc.on("exit", () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  };
  const hasExited = () => proc.exitCode !== null || proc.signalCode !== null;
  if (!(await waitForReady(() => log, hasExited, Date.now() + 10_000))) {
    await stop();
    throw new Error(`stunnel ${name} did not start:\n${log}`);
  }
  return { log: () => log, stop };
}

/** Sends `payload` and returns what comes back before the peer closes or `ms` pass (null: nothing). */
export function roundTrip(port: number, payload: Buffer, ms = 5000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const s = connect({ host: "127.0.0.1", port }, () => s.write(payload));
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(got.length ? got : null);
    };
    const timer = setTimeout(done, ms);
    s.on("data", (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= payload.length) done();
    });
    s.on("close", done);
    s.on("error", done);
  });
}
