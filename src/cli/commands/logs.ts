import { InvalidArgumentError, type Command } from 'commander';
import type { LogChunk, TaskBody } from '../../contract/schemas.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { addHostOption, clientFor, parseTimeArg, timeOption } from './tasks-common.js';

interface LogsFlags {
  readonly host?: string;
  readonly follow?: boolean;
  readonly tail?: number;
  readonly since?: string;
  readonly timestamps?: boolean;
}

/**
 * Why there are no per-line times: the task writes its log files itself (the daemon is not in
 * the path of its output, which is what keeps a chatty task from costing the daemon anything),
 * so nothing records when a line was written. Stamping lines with when they were read would be
 * a guess presented as a fact.
 */
const NO_LINE_TIMES = "the log files keep no time per line (a task writes them itself; the daemon is not in the way of its output)";

export function registerLogs(program: Command): void {
  const cmd = program
    .command('logs')
    .description("print a task's output (stdout to stdout, stderr to stderr)")
    .argument('<id>', 'task id or a unique prefix of it')
    .option('-f, --follow', 'keep printing until the task ends')
    .option('-n, --tail <lines>', "only each stream's last N lines (then, with -f, what follows)", tailOption)
    .option('--since <time>', 'only output written after this (10m, 24h or an RFC 3339 time), where the task\'s start and end times can tell', timeOption)
    .option('-t, --timestamps', 'refused: the log files keep no time per line');
  cmd.addHelpText('after', `
The log files keep no time per line, so --since is decided by the task's start and end: all of
its output if it started after that time, none if it ended before it, and refused (with what
--tail can do instead) for a task that ran across it. -t is refused for the same reason.

Examples:
  gpushare logs 3f2a1c
  gpushare logs -f --tail 20 3f2a1c
  gpushare logs --since 1h 3f2a1c
`);
  addHostOption(cmd).action(async (id: string, flags: LogsFlags) => {
    if (flags.timestamps) throw new GsError(ErrorCodes.invalidArgument, `--timestamps: ${NO_LINE_TIMES}, so lines cannot be stamped with when they were written; gpushare inspect gives the task's start and end times`);
    const client = await clientFor(flags);
    const task = await client.json<TaskBody>('GET', `/v1/tasks/${encodeURIComponent(id)}`);
    if (flags.since !== undefined && !sinceAllows(task, parseTimeArg(flags.since, Date.now()) ?? 0)) return;
    const query = new URLSearchParams();
    if (flags.follow) query.set('follow', '1');
    if (flags.tail !== undefined) query.set('tail', String(flags.tail));
    const q = query.toString();
    await client.lines(`/v1/tasks/${task.id}/logs${q === '' ? '' : `?${q}`}`, (value) => {
      const chunk = value as LogChunk;
      (chunk.stream === 'stderr' ? process.stderr : process.stdout).write(chunk.data);
    });
  });
}

function tailOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) throw new InvalidArgumentError(`"${value}" is not a number of lines; expected a whole number from 0 to 1000000`);
  return n;
}

/**
 * Whether all of the task's output was written at or after `since` (true: print it), none of it
 * (false: print nothing); a task that ran across `since` is refused, as which of its lines came
 * after is not known.
 */
export function sinceAllows(task: Pick<TaskBody, 'id' | 'submittedAt' | 'startedAt' | 'finishedAt'>, since: number): boolean {
  if (task.finishedAt !== null && task.finishedAt < since) return false;
  if ((task.startedAt ?? task.submittedAt) >= since) return true;
  const ran = `${new Date(task.startedAt ?? task.submittedAt).toISOString()} to ${task.finishedAt === null ? 'now' : new Date(task.finishedAt).toISOString()}`;
  throw new GsError(ErrorCodes.invalidArgument, `--since: task ${task.id} ran from ${ran}, across ${new Date(since).toISOString()}, and ${NO_LINE_TIMES}, so which lines came after is not known; --tail N gives the last lines`);
}
