// A build killed (SIGKILL) at any moment leaves the previous out/ and the secrets as they were: the
// real CLI is started and killed at a range of delays, from before key generation to after the end.
import { describe, expect, it } from "vitest";
import { cpSync, readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { buildCase, listFiles, privateSecrets, tempDir } from "./support.js";
import { packageRoot } from "../src/paths.js";
import { recoverOutput } from "../src/pack/output.js";
import { recoverSecrets } from "../src/pki/transaction.js";

const cliPath = join(packageRoot, "bin/f3s-gen.cjs");
const snapshot = (dir: string) => new Map(listFiles(dir).map((f) => [f, readFileSync(join(dir, f)).toString("base64")]));

function runKilled(args: string[], afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: "ignore" });
    const timer = setTimeout(() => child.kill("SIGKILL"), afterMs);
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe("a build killed midway", () => {
  it("leaves out/ and the secrets either as they were or completely updated, at every moment", async () => {
    const secrets0 = privateSecrets("example");
    const { outDir: out0 } = await buildCase("example", { secretsDir: secrets0 });
    const oldOut = snapshot(out0);
    const oldSecrets = snapshot(secrets0);
    // The next spec adds a client (a new 4096-bit key: generation takes a while) and a member.
    const spec = join(tempDir(), "spec.yaml");
    writeFileSync(
      spec,
      readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8").replace(
        "members:",
        "  - name: r3\n    mounts:\n      - export: /data/nfs/k3svolumes\n        mountpoint: /data/nfs/k3svolumes\n\nmembers:\n  - name: f9",
      ),
    );
    const outcomes: string[] = [];
    for (const delay of [0, 60, 150, 300, 600, 1000, 1600, 2500, 8000]) {
      const dir = tempDir();
      const secrets = join(dir, "secrets");
      const out = join(dir, "out");
      cpSync(secrets0, secrets, { recursive: true });
      cpSync(out0, out, { recursive: true });
      await runKilled(["build", spec, "--out", out, "--secrets", secrets, "--quiet"], delay);
      // What the next run does first: a kill inside the secrets transaction (files staged in .txn/, or
      // a journal committed and partly applied) is dropped or finished; test/secrets-kill.test.ts
      // stops at each of those writes in turn, this test only lands there by chance.
      recoverOutput(out);
      recoverSecrets(secrets);
      const outNow = snapshot(out);
      const secretsNow = snapshot(secrets);
      // A killed run can leave its lock files (holding its dead pid): the next run takes them over.
      const locks = readdirSync(dir).filter((n) => n.endsWith(".lock"));
      for (const l of locks) expect(() => process.kill(Number(readFileSync(join(dir, l), "utf8")), 0), l).toThrow();
      expect(readdirSync(dir).filter((n) => !n.endsWith(".lock")).sort(), `delay ${delay}`).toEqual(["out", "secrets"]);
      if (!outNow.has("r3.tar.gz")) {
        expect(outNow, `delay ${delay}: out/ changed without completing`).toEqual(oldOut);
        // Secrets may only have been committed in the instant before the swap; then they are complete.
        if (!secretsNow.has("clients/r3-cert.pem")) expect(secretsNow, `delay ${delay}`).toEqual(oldSecrets);
        outcomes.push("old");
      } else {
        expect([...outNow.keys()].sort(), `delay ${delay}`).toEqual([...oldOut.keys(), "r3.tar.gz", "f9.tar.gz"].sort());
        for (const [name, data] of outNow) if (name.endsWith(".tar.gz")) expect(() => gunzipSync(Buffer.from(data, "base64")), name).not.toThrow();
        outcomes.push("new");
      }
      // Whatever was interrupted, every secret that existed is byte-identical and the next build works.
      for (const [f, data] of oldSecrets) if (f !== "index.json") expect(secretsNow.get(f), `delay ${delay}: ${f}`).toBe(data);
      expect(existsSync(join(secrets, "index.json"))).toBe(true);
      await runKilled(["build", spec, "--out", out, "--secrets", secrets, "--quiet"], 60_000);
      expect(snapshot(out).has("r3.tar.gz"), `delay ${delay}: next build`).toBe(true);
      expect(readdirSync(dir).sort(), `delay ${delay}: the next build's locks are gone`).toEqual(["out", "secrets"]);
    }
    console.log(`kill outcomes: ${outcomes.join(" ")}`);
    // The early kills must have hit the work, the last must have let it finish.
    expect(outcomes[0]).toBe("old");
    expect(outcomes.at(-1)).toBe("new");
  });
});
