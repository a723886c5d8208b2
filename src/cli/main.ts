import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { VERSION } from './version.js';

/** Builds the `gpushare` command tree; exported so tests can inspect help text without a process. */
export function buildProgram(): Command {
  const program = new Command('gpushare')
    .description('Share NVIDIA GPUs between many jobs: fractional GPUs with memory and compute limits that hold.')
    .version(VERSION, '-v, --version', 'print the gpushare version')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions()
    .exitOverride();
  for (const register of commands) register(program);
  program.commands.forEach((c) => c.exitOverride().showHelpAfterError('(run with --help for usage)'));
  return program;
}

/** Runs the CLI and returns the exit status (the caller sets process.exitCode). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
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
