// Bash completion for tsrt and tsrt-singularity, written from the same tables as --help and the man pages.
// What a table does not say (the value of a flag without choices, a command's arguments) is left to bash's
// default completion (complete -o default): file names.
import { documentedFlags, type DocumentedFlag } from '../cli/help.js';
import { commands, globalFlags } from '../cli/main.js';
import { globalDocs, verbDocs, type Verb } from '../cli/manual.js';
import * as singularity from '../singularity/main.js';

/** A word list for compgen -W, or a case pattern: only the table's own words, which never hold quotes. */
function words(list: string[]): string {
  return [...new Set(list)].join(' ');
}

function pattern(list: string[]): string {
  return [...new Set(list)].join('|');
}

/** The value-flag and choice cases of one scope ('' for the global flags, else the verb). */
function valueCases(scope: string, flags: DocumentedFlag[]): { skip: string[]; choices: string[] } {
  const takes = flags.filter(f => f.arg !== undefined);
  return {
    skip: takes.flatMap(f => f.names.map(n => `${scope}:${n}`)),
    choices: takes
      .filter(f => f.choices)
      .map(f => `    ${pattern(f.names.map(n => `${scope}:${n}`))}) COMPREPLY=($(compgen -W "${words(f.choices!)}" -- "$cur")); return ;;`),
  };
}

export function tsrtCompletion(): string {
  const verbs = Object.keys(verbDocs) as Verb[];
  const global = documentedFlags(globalFlags, globalDocs);
  const scopes = [
    { scope: '', flags: global },
    ...verbs.map(v => ({ scope: v, flags: documentedFlags(commands[v].flags, verbDocs[v].flags) })),
  ];
  const cases = scopes.map(s => valueCases(s.scope, s.flags));
  const skip = cases.flatMap(c => c.skip);
  const withId = verbs.filter(v => verbDocs[v].usage.includes('<container-id>'));
  const stops = verbs.filter(v => commands[v].stopAtPositional);
  const verbFlags = scopes
    .slice(1)
    .filter(s => s.flags.length)
    .map(s => `    ${s.scope}) COMPREPLY=($(compgen -W "${words(s.flags.flatMap(f => f.names))}" -- "$cur")) ;;`);
  return `# bash completion for tsrt, generated at build time from src/cli/manual.ts and the verbs' flags.
_tsrt() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local verb='' root='' args=0 i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case "$verb:$w" in
    :--root | :-root) root=\${COMP_WORDS[i+1]}; ((i++)) ;;
    ${pattern(skip)}) ((i++)) ;;
    :-*) ;;
    :*) verb=$w ;;
    *) [[ $w == -* ]] || ((args++)) ;;
    esac
  done
  COMPREPLY=()
  case "$verb:$prev" in
${cases.flatMap(c => c.choices).join('\n')}
    ${pattern(skip)}) return ;;
  esac
  if [[ -z $verb ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "${words(global.flatMap(f => f.names))}" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "${words([...verbs, 'help'])}" -- "$cur"))
    fi
    return
  fi
  case $verb in
  ${pattern(stops)}) ((args > 0)) && return ;;
  esac
  if [[ $cur == -* ]]; then
    case $verb in
${verbFlags.join('\n')}
    esac
    return
  fi
  case $verb in
  help) ((args == 0)) && COMPREPLY=($(compgen -W "${words(verbs)}" -- "$cur")) ;;
  ${pattern(withId)})
    ((args == 0)) && COMPREPLY=($(compgen -W "$(\${COMP_WORDS[0]} \${root:+--root "$root"} list -q 2>/dev/null)" -- "$cur")) ;;
  esac
}
complete -o default -F _tsrt tsrt
`;
}

/** The flags a usage text names: --long ones, and -x short ones standing alone or before a |. */
export function usageFlags(usage: string): string[] {
  const long = usage.match(/--[a-z][a-z0-9-]*/g) ?? [];
  const short = [...usage.matchAll(/(?<=[\s[|])-[a-zA-Z](?=[\s\]|,])/g)].map(m => m[0]);
  return [...new Set([...long, ...short])];
}

/** Subcommands a usage text shows: "singularity CMD SUB" lines, or indented lower-case words under "CMD <command>". */
export function usageSubcommands(name: string, usage: string): string[] {
  const lines = usage.split('\n');
  const named = lines.map(l => new RegExp(`^\\s*singularity ${name} ([a-z][a-z-]*)\\b`).exec(l)?.[1]).filter(w => w !== undefined);
  if (named.length) return [...new Set(named)];
  if (!/<command>/.test(lines[0]!)) return [];
  return [
    ...new Set(
      lines
        .slice(1)
        .map(l => /^ {2}([a-z][a-z-]*)(?= )/.exec(l)?.[1])
        .filter(w => w !== undefined),
    ),
  ];
}

export function singularityCompletion(): string {
  const names = Object.keys(singularity.commands).sort();
  const global = singularity.globalOptions.flatMap(o => [`--${o.long}`, ...(o.short ? [`-${o.short}`] : [])]);
  const globalValues = singularity.globalOptions.filter(o => o.arg).flatMap(o => [`--${o.long}`, ...(o.short ? [`-${o.short}`] : [])]);
  const perCommand = names.map(n => {
    const usage = singularity.usage(singularity.commands[n]!);
    return { name: n, flags: usageFlags(usage), subs: usageSubcommands(n, usage) };
  });
  const flagCases = perCommand
    .filter(c => c.flags.length)
    .map(c => `    ${c.name}) COMPREPLY=($(compgen -W "${words(['--help', ...c.flags])}" -- "$cur")) ;;`);
  const subCases = perCommand
    .filter(c => c.subs.length)
    .map(c => `  ${c.name}) ((args == 0)) && COMPREPLY=($(compgen -W "${words(c.subs)}" -- "$cur")) ;;`);
  return `# bash completion for tsrt-singularity (and singularity when installed under that name), generated at
# build time from tsrt-singularity's command table.
_tsrt_singularity() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd='' args=0 i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case "$cmd:$w" in
    ${pattern(globalValues.map(f => `:${f}`))}) ((i++)) ;;
    :-*) ;;
    :*) cmd=$w ;;
    *) [[ $w == -* ]] || ((args++)) ;;
    esac
  done
  COMPREPLY=()
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "${words(global)}" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "${words([...names, 'help', 'version'])}" -- "$cur"))
    fi
    return
  fi
  if [[ $cur == -* ]]; then
    case $cmd in
${flagCases.join('\n')}
    esac
    return
  fi
  case $cmd in
  help) ((args == 0)) && COMPREPLY=($(compgen -W "${words(names)}" -- "$cur")) ;;
${subCases.join('\n')}
  esac
}
complete -o default -F _tsrt_singularity tsrt-singularity singularity
`;
}
