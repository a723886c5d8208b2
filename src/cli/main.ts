import { Command, CommanderError } from 'commander';
import { commands, commandsFor } from './commands/index.js';
import { VERSION } from './version.js';

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
    .exitOverride();
  const registers = await Promise.all((argv === undefined ? commands : commandsFor(argv)).map((c) => c.load()));
  for (const register of registers) register(program);
  program.commands.forEach((c) => c.exitOverride().showHelpAfterError('(run with --help for usage)'));
  return program;
}

/** Runs the CLI and returns the exit status (the caller sets process.exitCode). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError && err.code === 'commander.version') return 0;
    // Only a failing command needs the error codes (and the domain module behind them).
    const { reportError } = await import('./output/errors.js');
    return reportError(err, (t) => process.stderr.write(t));
  }
}
