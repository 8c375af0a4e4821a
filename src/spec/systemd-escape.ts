// systemd-escape --path, as systemd.unit(5) defines it: mount units must be named after Where=.
// Only a dot that would start the unit name is escaped (systemd's do_escape: no unit name begins
// with "."); a dot starting a later component stays (/data/.nfs is data-.nfs.mount).

export function systemdEscapePath(path: string): string {
  const trimmed = path.replace(/\/+/g, "/").replace(/^\/|\/$/g, "");
  if (trimmed === "") return "-";
  return trimmed
    .split("/")
    .map((component, c) =>
      [...component]
        .map((ch, i) => {
          if (ch === "." && i === 0 && c === 0) return "\\x2e";
          // Anything else is escaped byte by byte, as UTF-8 (ä is \xc3\xa4).
          return /[A-Za-z0-9:_.]/.test(ch) ? ch : [...Buffer.from(ch, "utf8")].map((b) => "\\x" + b.toString(16).padStart(2, "0")).join("");
        })
        .join(""),
    )
    .join("-");
}
