// /etc/exports split as FreeBSD's mountd reads it (usr.sbin/mountd/mountd.c: get_line skips
// comments and blank lines, nextfield splits on blanks; do_opt takes "-name=value" or "-name value").
// One reading for the tests that check mountd's rules (freebsd-rules) and the one that serves the
// lines from a real NFS server (exports-nfs).

/** One export line: its directories (they come first), its options, and any other word (a host). */
export interface ExportsLine {
  dirs: string[];
  options: Map<string, string>;
  /** Option names in the order written, with repeats (mountd rejects some combinations). */
  optionNames: string[];
  /** Words after the directories that are not options: host names, which the generated lines never have. */
  hosts: string[];
}

/** The fields of each line that is not a comment or blank. */
export function exportsFields(text: string): string[][] {
  return text
    .split("\n")
    .filter((l) => l.trim() && !l.trimStart().startsWith("#"))
    .map((l) => l.trim().split(/[ \t]+/));
}

/** A non-V4: line's directories, options and hosts. */
export function exportsLine(fields: string[]): ExportsLine {
  let i = 0;
  const dirs: string[] = [];
  // "dirs must be first": every directory comes before the first option or host.
  while (i < fields.length && fields[i]!.startsWith("/")) dirs.push(fields[i++]!);
  const options = new Map<string, string>();
  const optionNames: string[] = [];
  const hosts: string[] = [];
  for (; i < fields.length; i++) {
    const f = fields[i]!;
    if (!f.startsWith("-")) {
      hosts.push(f);
      continue;
    }
    const [name, value] = f.slice(1).split("=");
    optionNames.push(name!);
    // -network and -mask take their value as the next field when not written with "=".
    options.set(name!, value ?? (["network", "mask"].includes(name!) ? fields[++i]! : ""));
  }
  return { dirs, options, optionNames, hosts };
}

/** The /etc/exports as generated: the V4: line's fields and the export lines. */
export function readExports(text: string): { v4: string[][]; lines: ExportsLine[] } {
  const fields = exportsFields(text);
  return { v4: fields.filter((f) => f[0] === "V4:"), lines: fields.filter((f) => f[0] !== "V4:").map(exportsLine) };
}

/** The prefix length of a dotted-quad mask (checkmask's ones then zeros). */
export function maskBits(mask: string): number {
  return mask.split(".").reduce((bits, octet) => bits + Number(octet).toString(2).replaceAll("0", "").length, 0);
}
