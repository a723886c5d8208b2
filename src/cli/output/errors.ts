import { CommanderError } from 'commander';
import { ErrorCodes, isGsError, type ErrorCode } from '../../domain/index.js';

/** Exit statuses: 2 for bad usage or input (like most CLIs), 1 for everything else that went wrong. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

const usageCodes: ReadonlySet<ErrorCode> = new Set([ErrorCodes.invalidArgument, ErrorCodes.unsatisfiable]);

/** Turns any thrown value into one line on stderr and an exit status; bugs also print their stack. */
export function reportError(err: unknown, stderr: (text: string) => void): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (isGsError(err)) {
    stderr(`gpushare: ${err.message} [${err.code}]\n`);
    if (!err.expected && err.stack) stderr(`${err.stack}\n`);
    return usageCodes.has(err.code) ? EXIT.usage : EXIT.failure;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  stderr(`gpushare: internal error: ${e.message} [${ErrorCodes.internal}]\n${e.stack ?? ''}\n`);
  return EXIT.failure;
}
