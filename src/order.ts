// One order for everything f3s-gen sorts into its output: UTF-16 code-unit order, as `<` compares
// strings. localeCompare would make the order of hosts, keys and messages depend on the locale of
// the machine that builds (byte-identical tarballs are promised for the same spec and secrets),
// and its first call loads ICU's collator, ~14 ms of a ~250 ms warm build.

/** -1, 0 or 1 for `a` before, equal to or after `b`. */
export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
