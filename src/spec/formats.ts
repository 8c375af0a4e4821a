// String formats the schema names. Each is strict on purpose: a value that passes lands verbatim in a
// config file or a shell script, so nothing that could break the file it lands in may pass.

const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

export function isIpv4(s: string): boolean {
  return IPV4.test(s);
}

export function isIpv4Prefix(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  return !!m && isIpv4(m[1]!) && Number(m[2]) >= 0 && Number(m[2]) <= 32 && !/^0\d/.test(m[2]!);
}

export function isAbsolutePath(s: string): boolean {
  if (!/^(\/[A-Za-z0-9._-]+)+$/.test(s)) return false;
  return s.split("/").slice(1).every((c) => c !== "." && c !== "..") && s.length <= 1024;
}

/** zfs(8) dataset names: a pool (starting with a letter) and components of [A-Za-z0-9_.:-]. */
export function isZfsDataset(s: string): boolean {
  if (s.length > 255 || !/^[A-Za-z][A-Za-z0-9_.:-]*(\/[A-Za-z0-9_.:-]+)*$/.test(s)) return false;
  return s.split("/").every((c) => c !== "." && c !== "..");
}

export const formats = {
  ipv4: isIpv4,
  "ipv4-prefix": isIpv4Prefix,
  "absolute-path": isAbsolutePath,
  "zfs-dataset": isZfsDataset,
} as const;

export const formatHints: Record<keyof typeof formats, string> = {
  ipv4: "write a dotted-quad IPv4 address such as 192.0.2.10 (no leading zeros, no prefix)",
  "ipv4-prefix": "write the address with its prefix length, such as 192.0.2.10/24",
  "absolute-path": "write an absolute path such as /data/nfs: components of letters, digits, '.', '_' and '-', no '..', no spaces, no trailing slash",
  "zfs-dataset": "write a dataset name such as tank/data: a pool name starting with a letter, then components of letters, digits, '_', '-', '.', ':'",
};
