// Every generated zrepl.yml against zrepl's own field rules (test/zrepl-rules.ts).
import { describe, expect, it, beforeAll } from "vitest";
import { parse } from "yaml";
import { buildCase, readOut, validCases, type Built } from "./support.js";
import { zreplErrors } from "./zrepl-rules.js";

const builds = new Map<string, Built>();
beforeAll(async () => {
  for (const c of validCases) builds.set(c, await buildCase(c));
});

const zreplFiles = (c: string) =>
  [...readOut(builds.get(c)!.outDir)].flatMap(([tarball, entries]) =>
    entries.filter((e) => e.name === "usr/local/etc/zrepl/zrepl.yml").map((e) => [tarball, e.content.toString("utf8")] as const),
  );

describe.each(validCases)("zrepl.yml of %s", (c) => {
  it("passes zrepl's strict parser and job build on both storage nodes", () => {
    const files = zreplFiles(c);
    expect(files).toHaveLength(2);
    for (const [tarball, text] of files) expect(zreplErrors(text), tarball).toEqual([]);
  });

  it("pushes every replicated dataset from the primary to the standby's sink, raw", () => {
    const model = builds.get(c)!.result.checked.model!;
    const byHost = new Map(zreplFiles(c));
    const push = parse(byHost.get(`${model.primary.name}.tar.gz`)!);
    const sink = parse(byHost.get(`${model.standby.name}.tar.gz`)!);
    expect(push.jobs.map((j: { name: string }) => j.name)).toEqual(model.replication.jobs.map((j) => j.name));
    for (const [i, j] of model.replication.jobs.entries()) {
      const job = push.jobs[i];
      expect(job.connect.address).toBe(`${model.standby.replicationAddress}:${model.replication.port}`);
      // The NFS dataset's children too when its exports are datasets of their own.
      const withChildren = j.dataset === model.nfs.dataset && model.nfs.exportDatasets;
      expect(job.filesystems).toEqual({ [withChildren ? `${j.dataset}<` : j.dataset]: true });
      expect(job.send.encrypted).toBe(true);
      expect(job.snapshotting).toEqual({ type: "periodic", prefix: "zrepl_", interval: j.interval });
      expect(job.pruning.keep_sender).toContainEqual({ type: "last_n", count: j.keep, regex: "^zrepl_" });
      expect(job.pruning.keep_receiver).toContainEqual({ type: "last_n", count: j.keep, regex: "^zrepl_" });
    }
    expect(sink.jobs).toHaveLength(1);
    expect(sink.jobs[0].serve).toEqual({ type: "tcp", listen: `${model.standby.replicationAddress}:${model.replication.port}`, clients: { [model.primary.replicationAddress]: model.primary.name } });
    expect(sink.jobs[0].root_fs).toBe(model.replication.sinkRoot);
    expect(sink.jobs[0].recv.placeholder.encryption).toBe("inherit");
  });
});

describe("the zrepl rules themselves (so the check above can fail)", () => {
  const valid = `jobs:
  - name: a_to_b
    type: push
    connect: {type: tcp, address: "10.0.0.2:8888"}
    filesystems: {"tank/data": true}
    send: {encrypted: true}
    snapshotting: {type: periodic, prefix: zrepl_, interval: 1m}
    pruning:
      keep_sender: [{type: not_replicated}, {type: last_n, count: 10, regex: "^zrepl_"}]
      keep_receiver: [{type: last_n, count: 10, regex: "^zrepl_"}]
  - name: sink
    type: sink
    serve: {type: tcp, listen: ":8888", clients: {"10.0.0.1": "a"}}
    root_fs: tank/sink
    recv: {placeholder: {encryption: inherit}}
`;
  it("accepts the minimal push/sink pair of platform-facts A.14", () => expect(zreplErrors(valid)).toEqual([]));

  it.each([
    ["an unknown key", valid.replace("send: {encrypted: true}", "send: {encrypted: true, encrypt: true}"), /field encrypt not found/],
    ["a missing required key", valid.replace("    root_fs: tank/sink\n", ""), /field root_fs is required but not given/],
    ["an empty keep list", valid.replace('keep_receiver: [{type: last_n, count: 10, regex: "^zrepl_"}]', "keep_receiver: []"), /keep_receiver is required but has zero value/],
    ["a duration with two units", valid.replace("interval: 1m", "interval: 1h30m"), /invalid duration/],
    ["a bare number as duration", valid.replace("interval: 1m", "interval: 10"), /missing time unit/],
    ["last_n with count 0", valid.replace("count: 10, regex", "count: 0, regex"), /positive number|zero value/],
    ["an invalid placeholder value", valid.replace("encryption: inherit", "encryption: yes-please"), /must be one of unspecified, off, inherit/],
    ["not_replicated on the receiver", valid.replace('keep_receiver: [{type: last_n', "keep_receiver: [{type: not_replicated}, {type: last_n"), /invalid type name "not_replicated"/],
    ["an address without a port", valid.replace('"10.0.0.2:8888"', '"10.0.0.2"'), /not host:port/],
    ["duplicate job names", valid.replace("name: sink", "name: a_to_b"), /duplicate job name/],
    ["a job name starting with _", valid.replace("name: a_to_b", "name: _a"), /must not start with '_'/],
    ["a sink with pruning", valid.replace("    root_fs: tank/sink\n", "    root_fs: tank/sink\n    pruning: {}\n"), /field pruning not found/],
    ["a '<' inside a filter", valid.replace('"tank/data": true', '"tank<data": true'), /only one '<' at end/],
    ["a duplicate key", valid.replace("    type: sink\n", "    type: sink\n    type: sink\n"), /yaml: /],
    ["a CIDR client without '*'", valid.replace('"10.0.0.1": "a"', '"10.0.0.0/24": "a"'), /exactly one '\*'/],
  ])("rejects %s", (_name, text, message) => {
    expect(zreplErrors(text).join("\n")).toMatch(message);
  });
});
