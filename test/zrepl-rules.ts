// zrepl's configuration rules, written from ../shared/reference/platform-facts.md section A
// (zrepl 0.6.1 and 0.7.0 internal/config/config.go): ParseConfigBytes uses yaml.UnmarshalStrict, so
// unknown keys and duplicate keys fail; a field without `optional`/`default=` is required, and a
// required non-bool field may not be zero ("" [] {} 0). configcheck then builds the jobs, which
// checks enums such as the placeholder encryption, job names and filters.
import { parseDocument } from "yaml";

type Check = (value: unknown, path: string, errors: string[]) => void;

interface Field {
  check: Check;
  required: boolean;
  /** bools are exempt from the zero-value rule */
  bool?: boolean;
}

const req = (check: Check, bool = false): Field => ({ check, required: true, bool });
const opt = (check: Check, bool = false): Field => ({ check, required: false, bool });

const isZero = (v: unknown) => v === "" || v === 0 || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);

function struct(fields: Record<string, Field>): Check {
  return (value, path, errors) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return void errors.push(`${path}: must be a mapping`);
    const v = value as Record<string, unknown>;
    for (const key of Object.keys(v)) if (!(key in fields)) errors.push(`${path}: field ${key} not found in type`);
    for (const [key, field] of Object.entries(fields)) {
      if (!(key in v) || v[key] === null) {
        if (field.required) errors.push(`${path}: field ${key} is required but not given`);
        continue;
      }
      if (field.required && !field.bool && isZero(v[key])) errors.push(`${path}: field ${key} is required but has zero value`);
      field.check(v[key], `${path}.${key}`, errors);
    }
  };
}

/** An enum section: `type:` picks the struct. */
function byType(variants: Record<string, Record<string, Field>>): Check {
  return (value, path, errors) => {
    const t = (value as Record<string, unknown> | null)?.type;
    if (t === undefined) return void errors.push(`${path}: must specify type`);
    const fields = variants[String(t)];
    if (!fields) return void errors.push(`${path}: invalid type name "${String(t)}"`);
    struct({ type: req(str), ...fields })(value, path, errors);
  };
}

const str: Check = (v, p, e) => void (typeof v !== "string" && e.push(`${p}: must be a string`));
const bool: Check = (v, p, e) => void (typeof v !== "boolean" && e.push(`${p}: must be a bool`));
const positiveInt: Check = (v, p, e) => void ((!Number.isInteger(v) || (v as number) <= 0) && e.push(`${p}: must specify positive number`));
const oneOf = (...values: string[]): Check => (v, p, e) => void (!values.includes(v as string) && e.push(`${p}: must be one of ${values.join(", ")}`));
const list = (item: Check): Check => (v, p, e) => {
  if (!Array.isArray(v)) return void e.push(`${p}: must be a list`);
  v.forEach((x, i) => item(x, `${p}[${i}]`, e));
};

/** zrepl 0.6+ durations: one integer and one unit; a bare number other than 0 lacks its unit. */
export const duration: Check = (v, p, e) => {
  const m = /^\s*([+-]?\d+)\s*(|s|m|h|d|w)\s*$/.exec(String(v));
  if (!m) return void e.push(`${p}: invalid duration ${JSON.stringify(v)} (one number and one unit)`);
  if (m[2] === "" && Number(m[1]) !== 0) return void e.push(`${p}: missing time unit`);
  if (Number(m[1]) <= 0) e.push(`${p}: must be positive`);
};

/** Go's time.ParseDuration, for dial_timeout. */
const goDuration: Check = (v, p, e) => void (!/^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/.test(String(v)) && e.push(`${p}: invalid Go duration`));

/** net.SplitHostPort: "host:port" or ":port"; IPv6 hosts in brackets. */
export const hostport: Check = (v, p, e) => {
  if (typeof v !== "string" || !/^(\[[0-9a-fA-F:.%\w]+\]|[^:\[\]]*):\d{1,5}$/.test(v)) e.push(`${p}: not host:port`);
};

const COMPONENT = /^[A-Za-z0-9_.:-]+$/;
const DATASET = /^[A-Za-z][A-Za-z0-9_.:-]*(\/[A-Za-z0-9_.:-]+)*$/;
const dataset: Check = (v, p, e) => void (!DATASET.test(String(v)) && e.push(`${p}: invalid dataset name`));

const filesystems: Check = (v, p, e) => {
  if (typeof v !== "object" || v === null) return void e.push(`${p}: must be a mapping`);
  for (const [pattern, on] of Object.entries(v)) {
    if (typeof on !== "boolean") e.push(`${p}.${pattern}: must be true or false`);
    if (pattern.indexOf("<") !== -1 && pattern.indexOf("<") !== pattern.length - 1) e.push(`${p}: pattern invalid: only one '<' at end of string allowed`);
    const name = pattern.replace(/<$/, "");
    if (name !== "" && !DATASET.test(name)) e.push(`${p}: invalid dataset in pattern ${pattern}`);
  }
};

const clients: Check = (v, p, e) => {
  if (typeof v !== "object" || v === null) return void e.push(`${p}: must be a mapping`);
  for (const [addr, identity] of Object.entries(v)) {
    const cidr = addr.includes("/");
    if (!/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)(%\w+)?(\/\d{1,3})?$/.test(addr)) e.push(`${p}: invalid client address ${addr}`);
    const stars = String(identity).split("*").length - 1;
    if (cidr ? stars !== 1 : stars !== 0) e.push(`${p}.${addr}: identity ${identity} must contain ${cidr ? "exactly one" : "no"} '*'`);
    if (!COMPONENT.test(String(identity).replace("*", "x"))) e.push(`${p}.${addr}: identity ${identity} is not a valid dataset name component`);
  }
};

const outlet = byType({
  stdout: { level: req(oneOf("debug", "info", "warn", "error")), format: req(oneOf("human", "logfmt", "json")), time: opt(bool, true), color: opt(bool, true) },
  syslog: { level: req(oneOf("debug", "info", "warn", "error")), format: req(oneOf("human", "logfmt", "json")), facility: opt(str), retry_interval: opt(goDuration) },
  tcp: { level: req(oneOf("debug", "info", "warn", "error")), format: req(oneOf("human", "logfmt", "json")), net: req(oneOf("tcp", "udp")), address: req(hostport), retry_interval: opt(goDuration), tls: opt(() => {}) },
});

const keepRule = (side: "sender" | "receiver") =>
  byType({
    ...(side === "sender" ? { not_replicated: { keep_snapshot_at_cursor: opt(bool, true) } } : {}),
    last_n: { count: req(positiveInt), regex: opt(str) },
    grid: { grid: req(str), regex: req(str) },
    regex: { regex: req(str), negate: opt(bool, true) },
  });

const bandwidth = struct({ max: opt(str), bucket_capacity: opt(str) });

const sendOptions = struct({
  encrypted: opt(bool, true), raw: opt(bool, true), send_properties: opt(bool, true), backup_properties: opt(bool, true),
  large_blocks: opt(bool, true), compressed: opt(bool, true), embedded_data: opt(bool, true), saved: opt(bool, true), bandwidth_limit: opt(bandwidth),
});

const recvOptions = struct({
  properties: opt(struct({ inherit: opt(list(str)), override: opt(() => {}) })),
  bandwidth_limit: opt(bandwidth),
  placeholder: opt(struct({ encryption: opt(oneOf("unspecified", "off", "inherit")) })),
});

const protection = oneOf("guarantee_resumability", "guarantee_incremental", "guarantee_nothing");

const job = byType({
  push: {
    name: req(str),
    connect: req(byType({ tcp: { address: req(hostport), dial_timeout: opt(goDuration) } })),
    filesystems: req(filesystems),
    send: opt(sendOptions),
    snapshotting: req(
      byType({
        periodic: { prefix: req(str), interval: req(duration), hooks: opt(list(() => {})), timestamp_format: opt(str), timestamp_location: opt(str) },
        cron: { prefix: req(str), cron: req(str), hooks: opt(list(() => {})), timestamp_format: opt(str), timestamp_location: opt(str) },
        manual: {},
      }),
    ),
    pruning: req(struct({ keep_sender: req(list(keepRule("sender"))), keep_receiver: req(list(keepRule("receiver"))) })),
    replication: opt(struct({ protection: opt(struct({ initial: opt(protection), incremental: opt(protection) })), concurrency: opt(struct({ steps: opt(positiveInt), size_estimates: opt(positiveInt) })) })),
    conflict_resolution: opt(struct({ initial_replication: opt(oneOf("most_recent", "all", "fail")) })),
  },
  sink: {
    name: req(str),
    serve: req(byType({ tcp: { listen: req(hostport), listen_freebind: opt(bool, true), clients: req(clients) } })),
    root_fs: req(dataset),
    recv: opt(recvOptions),
  },
});

const config = struct({
  jobs: opt(list(job)),
  global: opt(struct({ logging: opt(list(outlet)), monitoring: opt(list(() => {})), control: opt(struct({ sockpath: opt(str) })), serve: opt(() => {}) })),
});

/** Every error zrepl (parse + configcheck's job build) would report; [] for a valid file. */
export function zreplErrors(text: string): string[] {
  const doc = parseDocument(text, { version: "1.1", uniqueKeys: true });
  if (doc.errors.length) return doc.errors.map((e) => `yaml: ${e.message.split("\n")[0]}`);
  const data = doc.toJS() ?? {};
  const errors: string[] = [];
  config(data, "config", errors);
  const names = new Map<string, number>();
  for (const [i, j] of ((data.jobs ?? []) as { name?: string; filesystems?: Record<string, boolean> }[]).entries()) {
    const name = String(j?.name ?? "");
    if (names.has(name)) errors.push(`jobs[${i}]: duplicate job name ${name}`);
    names.set(name, i);
    if (name.startsWith("_")) errors.push(`jobs[${i}]: job name ${name} must not start with '_'`);
    if (!COMPONENT.test(name)) errors.push(`jobs[${i}]: job name ${name} is not a valid dataset name component`);
    const fs = Object.keys(j?.filesystems ?? {});
    if (fs.length && !Object.values(j.filesystems!).some(Boolean)) errors.push(`jobs[${i}]: filesystems select nothing`);
  }
  return errors;
}
