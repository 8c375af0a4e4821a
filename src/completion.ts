// Shell completion scripts: commands, each command's options, spec files, and host names from out/.
export const COMMANDS = ["build", "validate", "diff", "show", "init", "pki", "completion"];
const PKI = ["status", "renew", "revoke", "rotate-ca"];
const OPTIONS: Record<string, string[]> = {
  build: ["--out", "--secrets", "--json", "--quiet", "--strict", "--debug", "--help"],
  validate: ["--json", "--strict", "--help"],
  diff: ["--out", "--secrets", "--json", "--help"],
  show: ["--out", "--cat", "--json", "--help"],
  init: ["--help"],
  pki: ["--secrets", "--json", "--all", "--dry-run", "--immediate", "--help"],
  completion: ["--help"],
};

function bash(): string {
  const cases = Object.entries(OPTIONS)
    .map(([c, o]) => `\t\t${c}) opts="${o.join(" ")}" ;;`)
    .join("\n");
  return `# bash completion for f3s-gen (f3s-gen completion bash)
_f3s_gen() {
	local cur prev cmd opts
	cur=\${COMP_WORDS[COMP_CWORD]}
	prev=\${COMP_WORDS[COMP_CWORD-1]}
	cmd=\${COMP_WORDS[1]:-}
	if [ "$COMP_CWORD" -eq 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W "${COMMANDS.join(" ")} --help --version" -- "$cur")
		return
	fi
	case $prev in
	--out | --secrets) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
	--cat)
		# The paths in that host's tarball (show lists them last on each line), not host names.
		local out=out i
		for ((i = 1; i < COMP_CWORD; i++)); do [ "\${COMP_WORDS[i]}" = --out ] && out=\${COMP_WORDS[i+1]}; done
		mapfile -t COMPREPLY < <(compgen -W "$(f3s-gen show "\${COMP_WORDS[2]}" --out "$out" 2>/dev/null | awk '{print $NF}')" -- "$cur")
		return
		;;
	esac
	case $cmd in
${cases}
	esac
	if [ "$cmd" = pki ] && [ "$COMP_CWORD" -eq 2 ]; then
		mapfile -t COMPREPLY < <(compgen -W "${PKI.join(" ")}" -- "$cur")
	elif [ "$cmd" = completion ]; then
		mapfile -t COMPREPLY < <(compgen -W "bash zsh fish" -- "$cur")
	elif [ "$cmd" = show ] && [[ $cur != -* ]]; then
		local hosts="" f
		for f in out/*.tar.gz; do [ -e "$f" ] && hosts="$hosts $(basename "$f" .tar.gz)"; done
		mapfile -t COMPREPLY < <(compgen -W "$hosts" -- "$cur")
	elif [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
	else
		mapfile -t COMPREPLY < <(compgen -f -X '!*.y*ml' -- "$cur"; compgen -d -- "$cur")
	fi
}
complete -F _f3s_gen f3s-gen
`;
}

function zsh(): string {
  return `#compdef f3s-gen
# zsh completion for f3s-gen (f3s-gen completion zsh > "\${fpath[1]}/_f3s-gen")
_f3s_gen() {
  local -a commands
  commands=(${COMMANDS.map((c) => `'${c}'`).join(" ")})
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  case $words[2] in
${Object.entries(OPTIONS)
  .map(([c, o]) => `    ${c}) _arguments '*:file:_files -g "*.y(a|)ml"' ${o.map((x) => `'${x}[${x.slice(2)}]'`).join(" ")} ;;`)
  .join("\n")}
  esac
}
_f3s_gen "$@"
`;
}

function fish(): string {
  const lines = [
    "# fish completion for f3s-gen (f3s-gen completion fish > ~/.config/fish/completions/f3s-gen.fish)",
    `complete -c f3s-gen -f -n "__fish_use_subcommand" -a "${COMMANDS.join(" ")}"`,
    `complete -c f3s-gen -f -n "__fish_seen_subcommand_from pki" -a "${PKI.join(" ")}"`,
    `complete -c f3s-gen -f -n "__fish_seen_subcommand_from completion" -a "bash zsh fish"`,
  ];
  for (const [c, opts] of Object.entries(OPTIONS)) for (const o of opts) if (!(c === "show" && o === "--cat")) lines.push(`complete -c f3s-gen -n "__fish_seen_subcommand_from ${c}" -l ${o.slice(2)}`);
  // show: the hosts with a tarball in out/; --cat: the paths in that host's tarball.
  lines.push(`complete -c f3s-gen -f -n "__fish_seen_subcommand_from show; and test (count (commandline -opc)) -eq 2" -a '(basename -s .tar.gz out/*.tar.gz 2>/dev/null)'`);
  lines.push(`complete -c f3s-gen -f -n "__fish_seen_subcommand_from show" -l cat -r -a '(f3s-gen show (commandline -opc)[3] 2>/dev/null | string match -r "\\S+\\$")'`);
  return lines.join("\n") + "\n";
}

export function completionScript(shell: string): string | undefined {
  return ({ bash, zsh, fish } as Record<string, () => string>)[shell]?.();
}
