import { InvalidArgumentError, type Command } from 'commander';
import type { GpusResponse, TaskBody } from '../../contract/schemas.js';
import { isGsError } from '../../domain/index.js';
import type { Client } from '../client.js';
import { renderSliceTable } from './gpus.js';
import { renderTasks } from './ps.js';
import { addHostOption, clientFor } from './tasks-common.js';

interface TopFlags {
  readonly host?: string;
  readonly interval: number;
  readonly once?: boolean;
  readonly json?: boolean;
}

const DEFAULT_INTERVAL = 2;

export function registerTop(program: Command): void {
  const cmd = program
    .command('top')
    .description('live view of the daemon: GPUs, the slices on them (reserved vs used), queued and running tasks')
    .option('-n, --interval <seconds>', `seconds between refreshes (default ${DEFAULT_INTERVAL})`, parseInterval, DEFAULT_INTERVAL)
    .option('--once', 'print one frame and exit (also what happens when stdout is not a terminal)')
    .option('--json', 'print one frame as JSON ({at, gpus, tasks}) and exit')
    .addHelpText('after', `
Keys: q (or Ctrl-C) quits.

Examples:
  gpushare top
  gpushare top -n 0.5
  gpushare top --once | less
`);
  addHostOption(cmd).action(async (flags: TopFlags) => {
    const client = await clientFor(flags);
    if (flags.json) {
      const { gpus, tasks } = await fetchFrame(client);
      process.stdout.write(`${JSON.stringify({ at: Date.now(), gpus: gpus.gpus, tasks }, null, 2)}\n`);
      return;
    }
    const where = client.target.kind === 'unix' ? client.target.path : client.target.url.origin;
    if (flags.once || process.stdout.isTTY !== true) {
      const { gpus, tasks } = await fetchFrame(client);
      process.stdout.write(`${renderTop(gpus, tasks, where, Date.now())}\n`);
      return;
    }
    await live(client, where, flags.interval);
  });
}

function parseInterval(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 3600) throw new InvalidArgumentError(`"${value}" is not an interval; expected seconds from 0.1 to 3600`);
  return n;
}

async function fetchFrame(client: Client): Promise<{ gpus: GpusResponse; tasks: TaskBody[] }> {
  const [gpus, tasks] = await Promise.all([client.json<GpusResponse>('GET', '/v1/gpus'), client.json<TaskBody[]>('GET', '/v1/tasks')]);
  return { gpus, tasks };
}

/** One frame: a summary line, GPUs with their slices, then the live tasks in queue order. */
export function renderTop(gpus: GpusResponse, tasks: readonly TaskBody[], where: string, now: number): string {
  const running = tasks.filter((t) => t.state === 'running').length;
  const queued = tasks.filter((t) => t.state === 'queued').length;
  const others = tasks.length - running - queued;
  const head = `gpushare top - ${new Date(now).toISOString().replace('T', ' ').slice(0, 19)} UTC - ${where} - ${running} running, ${queued} queued${others > 0 ? `, ${others} other` : ''}`;
  // Running first, then the queue in the order it will start (priority, then arrival).
  const ordered = [...tasks].sort((a, b) => rank(a) - rank(b) || (a.state === 'queued' ? b.priority - a.priority || a.seq - b.seq : a.seq - b.seq));
  return `${head}\n\n${renderSliceTable(gpus.description, gpus.gpus)}\n\n${renderTasks(ordered, now)}`;
}

function rank(t: TaskBody): number {
  return t.state === 'running' ? 0 : t.state === 'queued' ? 1 : 2;
}

/** Redraws until q, Ctrl-C or SIGTERM; a daemon that stops answering is shown, and retried. */
async function live(client: Client, where: string, seconds: number): Promise<void> {
  const out = process.stdout;
  const stdin = process.stdin;
  out.write('\x1b[?1049h\x1b[?25l'); // alternate screen, cursor hidden: the terminal comes back as it was
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (stdin.isTTY) {
        stdin.setRawMode(false);
        stdin.pause();
        stdin.off('data', onKey);
      }
      out.write('\x1b[?25h\x1b[?1049l');
      resolve();
    };
    const onKey = (key: Buffer): void => {
      const k = key.toString();
      if (k === 'q' || k === 'Q' || k === '\x03') stop();
    };
    const draw = async (): Promise<void> => {
      let body: string;
      try {
        const { gpus, tasks } = await fetchFrame(client);
        body = renderTop(gpus, tasks, where, Date.now());
      } catch (err) {
        body = `gpushare top - ${where}\n\n${isGsError(err) ? err.message : String(err)}\n(retrying every ${seconds}s)`;
      }
      if (stopped) return;
      out.write(`\x1b[H\x1b[2J${body}\n\nEvery ${seconds}s. q to quit.\n`);
      timer = setTimeout(() => void draw(), seconds * 1000);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (stdin.isTTY) {
      stdin.setRawMode(true);
      stdin.resume();
      stdin.on('data', onKey);
    }
    void draw();
  });
}
