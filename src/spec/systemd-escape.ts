// systemd-escape --path, as systemd.unit(5) defines it: mount units must be named after Where=.

export function systemdEscapePath(path: string): string {
  const trimmed = path.replace(/\/+/g, "/").replace(/^\/|\/$/g, "");
  if (trimmed === "") return "-";
  return trimmed
    .split("/")
    .map((component) =>
      [...component]
        .map((ch, i) => {
          if (ch === "." && i === 0) return "\\x2e";
          return /[A-Za-z0-9:_.]/.test(ch) ? ch : "\\x" + ch.charCodeAt(0).toString(16).padStart(2, "0");
        })
        .join(""),
    )
    .join("-");
}
