/**
 * The list commands' output flags, one set for all (kubectl's and docker's habits):
 * `-o json|yaml|wide|name`, `--format TEMPLATE` (template.ts), `--no-headers`, and `--json`
 * kept as an alias of `-o json`. A command says which -o values it has, and gives its items,
 * its table and their names; this turns the flags into text.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { parseTemplate, renderTemplate, type Template } from './template.js';

export const OUTPUT_FORMATS = ['json', 'yaml', 'wide', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** What commander makes of the flags (`--no-headers` sets headers to false). */
export interface OutputFlags {
  readonly output?: OutputFormat;
  readonly json?: boolean;
  readonly format?: Template;
  readonly headers?: boolean;
}

export type Output =
  | { readonly kind: 'table' | 'wide'; readonly headers: boolean }
  | { readonly kind: 'json' | 'yaml' | 'name' }
  | { readonly kind: 'template'; readonly template: Template; readonly headers: boolean };

/** Adds the output flags; `formats` are the -o values the command has (json always). */
export function addOutputOptions(cmd: Command, formats: readonly OutputFormat[] = OUTPUT_FORMATS, options: { readonly template?: boolean; readonly headers?: boolean } = {}): Command {
  cmd
    .addOption(new Option('-o, --output <format>', `print as ${described(formats)}`).choices(formats))
    .option('--json', 'the same as -o json (kept from earlier versions)');
  if (options.template !== false) cmd.option('--format <template>', 'print each item through a template: \'{{.ID}} {{.State}}\', \'{{json .}}\', \'table {{.ID}}\\t{{.State}}\' (README: Output formats)', templateOption);
  if (options.headers !== false) cmd.option('--no-headers', 'leave out the header row of a table');
  return cmd;
}

const FORMAT_WORDS: Readonly<Record<OutputFormat, string>> = { json: 'json', yaml: 'yaml', wide: 'wide (more columns)', name: 'name (kind/id, one a line)' };

/** `json, yaml or wide (more columns)`: the -o values a command has, in words. */
function described(formats: readonly OutputFormat[]): string {
  const words = formats.map((f) => FORMAT_WORDS[f]);
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1] ?? ''}`;
}

function templateOption(value: string): Template {
  try {
    return parseTemplate(value);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message.replace(/^--format: /, '') : String(err));
  }
}

/** What the flags ask for; two that contradict each other are an error, not a guess. */
export function outputOf(flags: OutputFlags): Output {
  if (flags.json && flags.output !== undefined && flags.output !== 'json') throw new GsError(ErrorCodes.invalidArgument, `--json is -o json; it cannot be combined with -o ${flags.output}`);
  const output = flags.json ? 'json' : flags.output;
  if (flags.format !== undefined) {
    if (output !== undefined) throw new GsError(ErrorCodes.invalidArgument, `--format prints through a template; it cannot be combined with ${flags.json ? '--json' : `-o ${output}`}`);
    return { kind: 'template', template: flags.format, headers: flags.headers !== false };
  }
  if (output === 'json' || output === 'yaml' || output === 'name') return { kind: output };
  return { kind: output ?? 'table', headers: flags.headers !== false };
}

/** What a command shows, for every form of output. */
export interface View<T> {
  /** The items: what templates see and names are taken from. */
  readonly items: readonly T[];
  /** What -o json and -o yaml print (default: the items). */
  readonly data?: unknown;
  /** An item's name for -o name (`task/3f2a1c9d8e7f`); absent: the command has no -o name. */
  readonly name?: (item: T) => string;
  /** The human table, or its wide form. */
  readonly table: (options: { readonly wide: boolean; readonly headers: boolean }) => string;
}

/** The text to print, without its last newline; '' prints nothing. */
export async function render<T>(output: Output, view: View<T>): Promise<string> {
  switch (output.kind) {
    case 'json':
      return JSON.stringify(view.data ?? view.items, null, 2);
    case 'yaml': {
      // Loaded for -o yaml only: js-yaml is the YAML library @kubernetes/client-node already brings.
      const { dump } = await import('js-yaml');
      return dump(view.data ?? view.items, { noRefs: true, lineWidth: -1 }).replace(/\n$/, '');
    }
    case 'name':
      return view.name === undefined ? '' : view.items.map(view.name).join('\n');
    case 'template':
      return renderTemplate(output.template, view.items, { headers: output.headers });
    case 'table':
    case 'wide':
      return view.table({ wide: output.kind === 'wide', headers: output.headers });
  }
}

/** Writes what render made, with a newline; nothing at all for nothing (an empty `ps -q`). */
export function writeOut(text: string): void {
  if (text !== '') process.stdout.write(`${text}\n`);
}
