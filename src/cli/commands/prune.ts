import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { PruneResponseBody } from '../../contract/schemas.js';
import { formatBytes } from '../../domain/index.js';
import { addHostOption, clientFor, parseTimeArg, timeOption } from './tasks-common.js';

interface PruneFlags {
  readonly host?: string;
  readonly until?: string;
  readonly force?: boolean;
  readonly dryRun?: boolean;
}

export function registerPrune(program: Command): void {
  const cmd = program
    .command('prune')
    .description('remove finished tasks (records, logs, state directories), after a confirmation unless -f')
    .option('--until <time>', 'only tasks that ended before this: a length of time back (24h, 7d) or an RFC 3339 time', timeOption)
    .option('-f, --force', 'do not ask for a confirmation')
    .option('--dry-run', 'say which tasks would go, and what they hold, removing nothing')
    .addHelpText('after', `
A user token prunes its own tenant's tasks; an admin everyone's. Queued and running tasks stay.

Examples:
  gpushare prune --until 7d
  gpushare prune -f --until 2026-12-01T00:00:00Z
`);
  addHostOption(cmd).action(async (flags: PruneFlags) => {
    const client = await clientFor(flags);
    // One cut-off for the dry run and the removal, so a confirmation covers what goes.
    const before = flags.until === undefined ? undefined : (parseTimeArg(flags.until, Date.now()) ?? undefined);
    const ask = (dryRun: boolean): Promise<PruneResponseBody> => client.json<PruneResponseBody>('POST', '/v1/tasks/prune', { ...(before === undefined ? {} : { before }), dryRun });
    if (flags.dryRun || !flags.force) {
      const would = await ask(true);
      if (would.removed.length === 0) {
        process.stdout.write('No finished tasks to remove.\n');
        return;
      }
      if (flags.dryRun) {
        process.stdout.write(`Would remove:\n${would.removed.map((r) => `${r.id}\n`).join('')}\nTotal: ${formatBytes(would.freedBytes)}\n`);
        return;
      }
      const what = `${would.removed.length} finished task${would.removed.length === 1 ? '' : 's'}${before === undefined ? '' : ` that ended before ${new Date(before).toISOString()}`} (${formatBytes(would.freedBytes)})`;
      if (!(await confirm(`This removes ${what}: their records, logs and directories. Are you sure? [y/N] `))) {
        process.stderr.write('Nothing removed.\n');
        process.exitCode = 1;
        return;
      }
    }
    const done = await ask(false);
    process.stdout.write(`${done.removed.length === 0 ? 'No finished tasks to remove.\n' : `Removed tasks:\n${done.removed.map((r) => `${r.id}\n`).join('')}`}\nTotal freed: ${formatBytes(done.freedBytes)}\n`);
  });
}

/** Asks on stderr and reads one line from stdin: yes only for y or yes; no at the end of input. */
async function confirm(question: string): Promise<boolean> {
  process.stderr.write(question);
  const lines = createInterface({ input: process.stdin });
  try {
    for await (const line of lines) return /^\s*y(es)?\s*$/i.test(line);
    return false;
  } finally {
    lines.close();
  }
}
