// FreeBSD's cron and a redeploy. cron cannot run here, so its rule is re-stated from its source,
// freebsd-src usr.sbin/cron/cron/database.c (load_database, process_crontab; the version that
// reads /etc/cron.d and /usr/local/etc/cron.d):
//  1. load_database reloads only when the newest mtime of the spool directory, /etc/crontab, each
//     cron.d directory and each regular file in them differs from the last load's ("maxmtime").
//  2. every cron.d file is processed as process_crontab("root", SYS_NAME, tabname, ...): the name
//     an entry is found under in the old database is SYS_NAME for every file (and /etc/crontab).
//  3. process_crontab: `u = find_user(old_db, fname)`, the first old entry of that name; if
//     `u->mtime == statbuf->st_mtime` the old entry (the old file's jobs) moves to the new database
//     and the file is not read; otherwise the file is loaded. Old entries left over are freed.
// So two files with the same mtime (tar gives every file of a release the same one) can take each
// other's place: a removed file's jobs go on, a kept file's jobs vanish, until cron restarts.
// Activation therefore restarts cron when a cron.d file was added, removed or changed.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { hasTool, privateSecrets, tempDir } from "./support.js";
import { Host, changeLines, keep, release } from "./host-harness.js";

const SYS_NAME = "*system*";

interface CronFile {
  name: string;
  mtime: number;
  jobs: string;
}
interface Entry {
  name: string;
  mtime: number;
  jobs: string;
}
interface Db {
  mtime: number;
  entries: Entry[];
}

/** load_database() of database.c over /etc/crontab and one cron.d directory. */
function loadDatabase(old: Db, crontab: CronFile, cronD: { mtime: number; files: CronFile[] }): Db {
  const maxmtime = Math.max(crontab.mtime, cronD.mtime, ...cronD.files.map((f) => f.mtime));
  if (old.mtime === maxmtime) return old; // rule 1
  const oldEntries = [...old.entries];
  const next: Entry[] = [];
  const processCrontab = (fname: string, file: CronFile) => {
    const at = oldEntries.findIndex((u) => u.name === fname); // find_user: the first of that name
    if (at >= 0) {
      const u = oldEntries[at]!;
      oldEntries.splice(at, 1);
      if (u.mtime === file.mtime) {
        next.push(u); // rule 3: the old entry, the file unread
        return;
      }
    }
    next.push({ name: fname, mtime: file.mtime, jobs: file.jobs });
  };
  processCrontab(SYS_NAME, crontab);
  for (const f of cronD.files) processCrontab(SYS_NAME, f); // rule 2
  return { mtime: maxmtime, entries: next };
}

const jobs = (db: Db) => db.entries.map((e) => e.jobs).sort();
const EXTRACTED = Date.UTC(2000, 0, 1) / 1000; // every file of a tarball
const NOW = 1_790_000_000; // when the directory changed: the extraction, or activation's rename
const crontab = { name: "/etc/crontab", mtime: NOW - 86_400, jobs: "system" };

describe("FreeBSD cron, re-stated from database.c", () => {
  it("a removed cron.d file whose mtime its neighbour shares keeps running, and the neighbour's jobs are gone", () => {
    const failback = { name: "carp-auto-failback", mtime: EXTRACTED, jobs: "failback" };
    const monitoring = { name: "f3s-monitoring", mtime: EXTRACTED, jobs: "monitoring" };
    const v1 = loadDatabase({ mtime: 0, entries: [] }, crontab, { mtime: NOW, files: [failback, monitoring] });
    expect(jobs(v1)).toEqual(["failback", "monitoring", "system"]);
    // failback.enabled: false: the file goes; the directory's mtime changes, so cron reloads.
    const v2 = loadDatabase(v1, crontab, { mtime: NOW + 60, files: [monitoring] });
    expect(jobs(v2), "the deleted job runs on, the kept one is lost").toEqual(["failback", "system"]);
    // A restart starts from an empty database and reads every file.
    expect(jobs(loadDatabase({ mtime: 0, entries: [] }, crontab, { mtime: NOW + 60, files: [monitoring] }))).toEqual(["monitoring", "system"]);
  });

  it("a cron.d file replaced by one with the same mtime (tar's) is not read: its old jobs stay", () => {
    const v1 = loadDatabase({ mtime: 0, entries: [] }, crontab, { mtime: NOW, files: [{ name: "f3s-monitoring", mtime: EXTRACTED, jobs: "old" }] });
    const v2 = loadDatabase(v1, crontab, { mtime: NOW + 60, files: [{ name: "f3s-monitoring", mtime: EXTRACTED, jobs: "new" }] });
    expect(jobs(v2)).toEqual(["old", "system"]);
  });
});

const ready = hasTool("dash", ["-c", "true"]) && hasTool("flock", ["--version"]);
const exampleSpec = readFileSync(join(packageRoot, "fixtures/valid/example/spec.yaml"), "utf8");

describe.skipIf(!ready)("activation restarts cron when a cron.d file was added, removed or changed", () => {
  it("and only then", { timeout: 240_000 }, async () => {
    const secretsDir = privateSecrets("example");
    const outDir = join(tempDir(), "out");
    const noFailback = exampleSpec.replace("enabled: true", "enabled: false");
    const otherMetrics = exampleSpec.replace(/\nclients:/, "\nmonitoring:\n  storageTextfileDirectory: /var/db/f3s-metrics\nclients:");
    const outs = [];
    for (const spec of [exampleSpec, noFailback, exampleSpec, otherMetrics, otherMetrics.replace("password: testpass", "password: N3wCarpPass")]) outs.push(keep(await release(spec, outDir, secretsDir)));
    const host = new Host("f0");
    const restarts = () => host.sb.calls().filter((c) => c === "service cron restart").length;
    expect(changeLines(host.deploy(outs[0]!).stdout, "changed")).toContain("restarted cron for its changed cron.d files");
    host.becomeMaster();
    expect(restarts()).toBe(1);
    for (const [i, why, restarted] of [[1, "removed", true], [2, "added", true], [3, "changed", true], [4, "no cron.d change", false]] as const) {
      const r = host.deploy(outs[i]!);
      expect(changeLines(r.stdout, "changed").includes("restarted cron for its changed cron.d files"), why).toBe(restarted);
      expect(host.activate().stdout, `${why}: a second run`).toMatch(/nothing changed/);
    }
    expect(restarts()).toBe(4);
    // Where cron does not run, it is said, not started.
    host.sb.set("running/cron", "");
    const { rmSync } = await import("node:fs");
    rmSync(join(host.sb.state, "running/cron"));
    const r = host.deploy(outs[1]!);
    expect(r.stderr).toContain("cron does not run here");
  });
});
