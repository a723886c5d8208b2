import { Command, CommanderError, Help, Option } from 'commander';
import { commands, commandsFor } from './commands/index.js';
import { VERSION } from './version.js';

/**
 * Options that reach the daemon, accepted before the command too (`gpushare --host X ps`, as
 * docker and kubectl take theirs); the command's own option of the same name receives the value.
 */
const GLOBAL_OPTIONS = [
  new Option('--host <socket|url>', 'the daemon: a Unix socket path or http(s)://host:port (GPUSHARE_HOST)'),
  new Option('--ca-file <file>', "PEM CA that signed an https:// daemon's certificate (GPUSHARE_CA_FILE)"),
  new Option('--timeout <seconds>', 'wait this long for the daemon to answer (GPUSHARE_TIMEOUT; default 30; 0: no limit)'),
];
const GLOBAL_FLAGS = new Set(GLOBAL_OPTIONS.map((o) => o.long));

/** `run`'s own failures exit 125, as docker's (run.ts RUN_EXIT), so they never pass for a task's code. */
const RUN_FAILURE = 125;

/**
 * Builds the `gpushare` command tree; with `argv`, only the commands that command line can reach
 * (see commandsFor), so that a command's start-up does not load its siblings' modules.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = new Command('gpushare')
    .description('Share NVIDIA GPUs between many jobs: fractional GPUs with memory and compute limits that hold.')
    .version(VERSION, '-v, --version', 'print the gpushare version')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions()
    .exitOverride()
    // Before the commands are added: they inherit it.
    .configureHelp({ optionDescription: describeOption });
  for (const option of GLOBAL_OPTIONS) program.addOption(option);
  program.hook('preAction', (_program, action) => passGlobalOptions(program, action));
  const registers = await Promise.all((argv === undefined ? commands : commandsFor(withoutGlobalOptions(argv))).map((c) => c.load()));
  for (const register of registers) register(program);
  program.commands.forEach((c) => c.exitOverride().showHelpAfterError('(run with --help for usage)'));
  return program;
}

/**
 * An option's help line. commander adds "(default: X)" for a declared default value; an option
 * whose description already says its default (in words, or a unit: "(default 2)") keeps its
 * own, so that no line says it twice ("(default 2) (default: 2)").
 */
export function describeOption(option: Option): string {
  const base = Help.prototype.optionDescription;
  if (option.defaultValue === undefined || !/\bdefault\b/.test(option.description)) return base.call(new Help(), option);
  const withoutDefault = Object.assign(Object.create(Object.getPrototypeOf(option) as object) as Option, option, { defaultValue: undefined, defaultValueDescription: undefined });
  return base.call(new Help(), withoutDefault);
}

/** Hands the global options given before the command to the command that runs (its own, given after, win). */
function passGlobalOptions(program: Command, action: Command): void {
  for (const option of GLOBAL_OPTIONS) {
    const key = option.attributeName();
    if (program.getOptionValueSource(key) !== 'cli') continue;
    const own = action.options.find((o) => o.long === option.long);
    if (own === undefined) {
      action.error(`error: \`${commandPath(action)}\` takes no ${option.long} (given before the command)`, { code: 'gpushare.globalOption', exitCode: 2 });
    }
    if (action.getOptionValueSource(key) !== 'cli') action.setOptionValueWithSource(key, program.getOptionValue(key) as unknown, 'cli');
  }
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The command line without the global options before the command (they take a value each). */
export function withoutGlobalOptions(argv: readonly string[]): string[] {
  const out = argv.slice(0, 2);
  let i = 2;
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (GLOBAL_FLAGS.has(arg)) i++;
    else if (!GLOBAL_FLAGS.has(arg.split('=')[0] ?? '')) break;
  }
  return [...out, ...argv.slice(i)];
}

/** Runs the CLI and returns the exit status (the caller sets process.exitCode). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = await buildProgram(argv);
  const isRun = withoutGlobalOptions(argv)[2] === 'run';
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError && err.code === 'commander.version') return 0;
    // Only a failing command needs the error codes (and the domain module behind them).
    const { reportError } = await import('./output/errors.js');
    const status = reportError(err, (t) => process.stderr.write(t));
    return isRun && status !== 0 ? RUN_FAILURE : status;
  }
}
