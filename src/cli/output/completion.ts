/**
 * Shell completion scripts for bash, zsh and fish, generated from the commander command tree,
 * so a new command or option completes without anyone editing a script. Each script holds the
 * same tables (a command path's subcommands, options, options that take a value, their choices)
 * and the same walk: the words typed so far name a command path, skipping option values; the
 * word under the cursor is then an option, an option's value, a subcommand or a task id. Task
 * ids come from `gpushare ps -a -q` (one request to the daemon) for the commands that take one.
 */
import type { Command } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

export interface OptionNode {
  /** `-a`, `--all`: what may be typed. */
  readonly flags: readonly string[];
  readonly description: string;
  readonly takesValue: boolean;
  readonly choices: readonly string[] | null;
}

export interface CommandNode {
  /** Words from the top: [] for gpushare itself, ['tenant', 'ls']. */
  readonly path: readonly string[];
  readonly description: string;
  readonly subcommands: readonly CommandNode[];
  readonly options: readonly OptionNode[];
  /** Its argument is a task id (completed from `ps -a -q`). */
  readonly takesTaskId: boolean;
  /** The values its first argument may take (`completion <shell>`), or none. */
  readonly argumentChoices: readonly string[];
}

const HELP: OptionNode = { flags: ['-h', '--help'], description: 'display help for command', takesValue: false, choices: null };

/** The tree as completion needs it: visible commands and options, help included. */
export function commandTree(cmd: Command, path: readonly string[] = []): CommandNode {
  const options = cmd.options
    .filter((o) => !o.hidden)
    .map((o) => ({
      flags: [o.short, o.long].filter((f): f is string => f !== undefined),
      description: o.description,
      takesValue: o.required || o.optional,
      choices: o.argChoices ?? null,
    }));
  const first = cmd.registeredArguments[0]?.name();
  return {
    path,
    description: cmd.description(),
    subcommands: cmd.commands.filter((c) => c.name() !== 'help').map((c) => commandTree(c, [...path, c.name()])),
    options: [...options, HELP],
    // Task commands are the top-level ones that take an id (`token revoke <id>` is a token's).
    takesTaskId: path.length === 1 && first === 'id',
    argumentChoices: cmd.registeredArguments[0]?.argChoices ?? [],
  };
}

function walk(node: CommandNode): CommandNode[] {
  return [node, ...node.subcommands.flatMap(walk)];
}

/** Single-quoted for sh, bash, zsh and fish alike (fish takes \' inside; the others '\''). */
const sq = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;
const fishQuote = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim();

export function completionScript(shell: Shell, program: Command): string {
  const tree = commandTree(program);
  const name = program.name();
  switch (shell) {
    case 'bash':
      return bashScript(name, walk(tree));
    case 'zsh':
      return zshScript(name, walk(tree));
    case 'fish':
      return fishScript(name, walk(tree));
  }
}

/** `case` arms over the command paths, one per path where `value` has something to say. */
function caseArms(nodes: readonly CommandNode[], value: (n: CommandNode) => string | null, indent: string): string {
  return nodes
    .map((n) => ({ key: n.path.join(' '), v: value(n) }))
    .filter((a) => a.v !== null)
    .map((a) => `${indent}${sq(a.key)}) ${a.v} ;;`)
    .join('\n');
}

const words = (list: readonly string[]): string => `echo ${sq(list.join(' '))}`;
const valued = (n: CommandNode): string[] => n.options.filter((o) => o.takesValue).flatMap((o) => o.flags);
const choiceArms = (nodes: readonly CommandNode[], indent: string): string =>
  nodes
    .flatMap((n) => n.options.filter((o) => o.choices !== null).flatMap((o) => o.flags.map((f) => ({ key: `${n.path.join(' ')}|${f}`, choices: o.choices ?? [] }))))
    .map((a) => `${indent}${sq(a.key)}) ${words(a.choices)} ;;`)
    .join('\n');
const idPaths = (nodes: readonly CommandNode[]): string => nodes.filter((n) => n.takesTaskId).map((n) => sq(n.path.join(' '))).join('|');

/** The tables as shell functions: bash and zsh read the same ones. */
function shTables(fn: string, nodes: readonly CommandNode[]): string {
  return `${fn}_subs() {
  case "$1" in
${caseArms(nodes, (n) => (n.subcommands.length === 0 ? null : words(n.subcommands.map((s) => s.path[s.path.length - 1] ?? ''))), '    ')}
  esac
}
${fn}_opts() {
  case "$1" in
${caseArms(nodes, (n) => words(n.options.flatMap((o) => o.flags)), '    ')}
  esac
}
${fn}_valued() {
  case "$1" in
${caseArms(nodes, (n) => (valued(n).length === 0 ? null : words(valued(n))), '    ')}
  esac
}
${fn}_choices() {
  case "$1|$2" in
${choiceArms(nodes, '    ')}
  esac
}
${fn}_args() {
  case "$1" in
${caseArms(nodes, (n) => (n.argumentChoices.length === 0 ? null : words(n.argumentChoices)), '    ')}
  esac
}
${fn}_takes_id() {
  case "$1" in
    ${idPaths(nodes) || "''"}) return 0 ;;
  esac
  return 1
}
`;
}

/**
 * bash's and zsh's walk over the words before the cursor (the same syntax in both): the command
 * path they name into `cmdpath`, skipping the values of options that take one; after `--`, the
 * rest is the task's command line, and `afterDoubleDash` runs.
 */
function shWalk(fn: string, shell: { readonly words: string; readonly first: number; readonly current: string; readonly afterDoubleDash: string }): string {
  return `  for ((i = ${shell.first}; i < ${shell.current}; i++)); do
    w="\${${shell.words}[i]}"
    if ((skip)); then skip=0; continue; fi
    [[ "$w" == "--" ]] && ${shell.afterDoubleDash}
    if [[ "$w" == -* ]]; then
      [[ " $(${fn}_valued "$cmdpath") " == *" $w "* ]] && skip=1
      continue
    fi
    if [[ " $(${fn}_subs "$cmdpath") " == *" $w "* ]]; then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done`;
}

function bashScript(name: string, nodes: readonly CommandNode[]): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  return `# bash completion for ${name}: generated by \`${name} completion bash\` from its command tree.
# Load it now with: source <(${name} completion bash)
# or for every shell: ${name} completion bash > ~/.local/share/bash-completion/completions/${name}
${shTables(fn, nodes)}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmdpath="" skip=0 i w
${shWalk(fn, { words: 'COMP_WORDS', first: 1, current: 'COMP_CWORD', afterDoubleDash: 'return 0' })}
  if [[ " $(${fn}_valued "$cmdpath") " == *" $prev "* ]]; then
    local choices
    choices="$(${fn}_choices "$cmdpath" "$prev")"
    if [[ -n "$choices" ]]; then COMPREPLY=($(compgen -W "$choices" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(${fn}_opts "$cmdpath")" -- "$cur"))
  elif [[ -n "$(${fn}_subs "$cmdpath")" ]]; then
    COMPREPLY=($(compgen -W "$(${fn}_subs "$cmdpath")" -- "$cur"))
  elif [[ -n "$(${fn}_args "$cmdpath")" ]]; then
    COMPREPLY=($(compgen -W "$(${fn}_args "$cmdpath")" -- "$cur"))
  elif ${fn}_takes_id "$cmdpath"; then
    COMPREPLY=($(compgen -W "$(${name} ps -a -q 2>/dev/null)" -- "$cur"))
  fi
  return 0
}
complete -o bashdefault -o default -F ${fn} ${name}
`;
}

/** zsh's _describe entries: `word:description`, with the colons in the word escaped. */
const describeEntries = (entries: readonly [string, string][]): string => entries.map(([w, d]) => sq(`${w.replace(/:/g, '\\:')}:${oneLine(d)}`)).join(' ');

function zshScript(name: string, nodes: readonly CommandNode[]): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const described = (n: CommandNode): string | null =>
    n.subcommands.length === 0 ? null : `reply=(${describeEntries(n.subcommands.map((s) => [s.path[s.path.length - 1] ?? '', s.description]))})`;
  const optionsDescribed = (n: CommandNode): string => `reply=(${describeEntries(n.options.flatMap((o) => o.flags.map((f) => [f, o.description] as [string, string])))})`;
  return `#compdef ${name}
# zsh completion for ${name}: generated by \`${name} completion zsh\` from its command tree.
# Load it now with: source <(${name} completion zsh)
# or put it on $fpath as _${name}: ${name} completion zsh > "\${fpath[1]}/_${name}"
${shTables(`${fn}_t`, nodes)}
${fn}_described_subs() {
  case "$1" in
${caseArms(nodes, described, '    ')}
  esac
}
${fn}_described_opts() {
  case "$1" in
${caseArms(nodes, optionsDescribed, '    ')}
  esac
}
${fn}() {
  local cmdpath="" w cur="\${words[CURRENT]}" prev="\${words[CURRENT-1]}"
  local -i i skip=0
  local -a reply
${shWalk(`${fn}_t`, { words: 'words', first: 2, current: 'CURRENT', afterDoubleDash: '{ _files; return; }' })}
  if [[ " $(${fn}_t_valued "$cmdpath") " == *" $prev "* ]]; then
    local choices="$(${fn}_t_choices "$cmdpath" "$prev")"
    if [[ -n "$choices" ]]; then compadd -- \${=choices}; else _files; fi
    return
  fi
  if [[ "$cur" == -* ]]; then
    ${fn}_described_opts "$cmdpath"
    _describe -t options 'option' reply
  elif [[ -n "$(${fn}_t_subs "$cmdpath")" ]]; then
    ${fn}_described_subs "$cmdpath"
    _describe -t commands 'command' reply
  elif [[ -n "$(${fn}_t_args "$cmdpath")" ]]; then
    compadd -- \${=$(${fn}_t_args "$cmdpath")}
  elif ${fn}_t_takes_id "$cmdpath"; then
    compadd -- \${(f)"$(${name} ps -a -q 2>/dev/null)"}
  else
    _files
  fi
}
if [[ "\${funcstack[1]}" == "${fn}" ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${name}
fi
`;
}

function fishScript(name: string, nodes: readonly CommandNode[]): string {
  const fn = `__${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const fishCase = (value: (n: CommandNode) => readonly string[]): string =>
    nodes
      .filter((n) => value(n).length > 0)
      .map((n) => `    case ${fishQuote(n.path.join(' '))}\n        printf '%s\\n' ${value(n).map(fishQuote).join(' ')}`)
      .join('\n');
  const lines: string[] = [];
  for (const n of nodes) {
    const when = `-n ${fishQuote(`${fn}_is ${fishQuote(n.path.join(' '))}`)}`;
    for (const s of n.subcommands) lines.push(`complete -c ${name} ${when} -f -a ${fishQuote(s.path[s.path.length - 1] ?? '')} -d ${fishQuote(oneLine(s.description))}`);
    for (const o of n.options) {
      const short = o.flags.find((f) => /^-[^-]$/.test(f));
      const long = o.flags.find((f) => f.startsWith('--'));
      const value = o.choices !== null ? ` -x -a ${fishQuote(o.choices.join(' '))}` : o.takesValue ? ' -r' : '';
      lines.push(`complete -c ${name} ${when}${short ? ` -s ${short.slice(1)}` : ''}${long ? ` -l ${long.slice(2)}` : ''}${value} -d ${fishQuote(oneLine(o.description))}`);
    }
    if (n.argumentChoices.length > 0) lines.push(`complete -c ${name} ${when} -f -a ${fishQuote(n.argumentChoices.join(' '))}`);
    if (n.takesTaskId) lines.push(`complete -c ${name} ${when} -f -a ${fishQuote(`(${name} ps -a -q 2>/dev/null)`)}`);
  }
  return `# fish completion for ${name}: generated by \`${name} completion fish\` from its command tree.
# Load it now with: ${name} completion fish | source
# or for every shell: ${name} completion fish > ~/.config/fish/completions/${name}.fish
function ${fn}_subs
    switch "$argv[1]"
${fishCase((n) => n.subcommands.map((s) => s.path[s.path.length - 1] ?? ''))}
    end
end
function ${fn}_valued
    switch "$argv[1]"
${fishCase(valued)}
    end
end
# The command path the words before the cursor name (option values skipped).
function ${fn}_path
    set -l cmdpath ''
    set -l skip 0
    for w in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $w
            contains -- $w (${fn}_valued "$cmdpath"); and set skip 1
            continue
        end
        if contains -- $w (${fn}_subs "$cmdpath")
            set cmdpath (string trim -- "$cmdpath $w")
        end
    end
    echo $cmdpath
end
function ${fn}_is
    set -l current (${fn}_path)
    test "$current" = "$argv[1]"
end
${lines.join('\n')}
`;
}
