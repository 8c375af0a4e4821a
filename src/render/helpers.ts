// Template helpers: few, and only for quoting that every template would otherwise get wrong.

export function registerHelpers(hb: Pick<typeof import("handlebars"), "registerHelper">) {
  /** devd.conf match values are regular expressions: escape the dots of an interface name. */
  hb.registerHelper("regex", (s: string) => String(s).replace(/[.\\+*?[^\]$(){}=!<>|:-]/g, "\\$&"));
  /** Joins a list with a separator (default: one space). */
  hb.registerHelper("join", (list: unknown[], sep: unknown) => list.join(typeof sep === "string" ? sep : " "));
  hb.registerHelper("concat", (...args: unknown[]) => args.slice(0, -1).join(""));
  hb.registerHelper("eq", (a: unknown, b: unknown) => a === b);
  /** A value in single quotes for sh; values are validated, so this is belt and braces. */
  hb.registerHelper("shq", (s: unknown) => "'" + String(s).replace(/'/g, "'\\''") + "'");
}
