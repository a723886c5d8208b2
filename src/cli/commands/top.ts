import { InvalidArgumentError, Option, type Command } from 'commander';
import type { GpusResponse, TaskBody } from '../../contract/schemas.js';
import { isGsError } from '../../domain/index.js';
import type { Client } from '../client.js';
import { addOutputOptions, outputOf, render, writeOut, type OutputFlags } from '../output/format.js';
import { renderSliceTable } from './gpus.js';
import { renderTasks } from './ps.js';
import { addHostOption, clientFor } from './tasks-common.js';

interface TopFlags extends OutputFlags {
  readonly host?: string;
  readonly delay: number;
  readonly iterations?: number | { readonly interval: number };
  readonly interval?: number;
  readonly once?: boolean;
}

const DEFAULT_DELAY = 2;

export function registerTop(program: Command): void {
  const cmd = program
    .command('top')
    .description('live view of the daemon: GPUs, the slices on them (reserved vs used), queued and running tasks')
    .option('-d, --delay <seconds>', 'seconds between refreshes', parseInterval, DEFAULT_DELAY)
    .option('-n, --iterations <count>', 'stop after this many frames, as top(1) does (a fraction, as -n meant before 0.2, is still read as seconds between refreshes)', parseIterations)
    .addOption(new Option('--interval <seconds>', 'the same as -d').argParser(parseInterval).hideHelp())
    .option('--once', 'print one frame and exit (also what happens when stdout is not a terminal, unless -n)');
  addOutputOptions(cmd, ['json', 'yaml'], { template: false, headers: false }).addHelpText('after', `
-o json and -o yaml print one frame ({at, gpus, tasks}) and exit; with -n N, N of them (JSON one
a line, YAML as documents). Without a terminal, top prints one frame, or N frames -d apart.

Keys: q (or Ctrl-C) quits.

Examples:
  gpushare top
  gpushare top -d 0.5
  gpushare top -n 3 -d 1 > frames.txt
  gpushare top -o json | jq '.tasks[].id'
`);
  addHostOption(cmd).action(async (flags: TopFlags) => {
    const client = await clientFor(flags);
    const output = outputOf(flags);
    let delay = flags.interval ?? flags.delay;
    let count = flags.iterations;
    if (typeof count === 'object') {
      // The old -n: seconds between refreshes. Only a fraction is surely that; a whole number is now a count.
      process.stderr.write(`gpushare top: -n ${count.interval} read as seconds between refreshes; that is -d now (-n is a number of frames, as in top(1))\n`);
      delay = count.interval;
      count = undefined;
    }
    if (output.kind === 'json' || output.kind === 'yaml') {
      for (let i = 0; i < (count ?? 1); i += 1) {
        if (i > 0) await sleep(delay);
        const { gpus, tasks } = await fetchFrame(client);
        const frame = { at: Date.now(), gpus: gpus.gpus, tasks };
        const many = (count ?? 1) > 1;
        writeOut(output.kind === 'json' && many ? JSON.stringify(frame) : `${many && output.kind === 'yaml' ? '---\n' : ''}${await render(output, { items: [frame], data: frame, table: () => '' })}`);
      }
      return;
    }
    const where = client.target.kind === 'unix' ? client.target.path : client.target.url.origin;
    if (flags.once || process.stdout.isTTY !== true) {
      for (let i = 0; i < (flags.once ? 1 : (count ?? 1)); i += 1) {
        if (i > 0) await sleep(delay);
        const { gpus, tasks } = await fetchFrame(client);
        process.stdout.write(`${i > 0 ? '\n' : ''}${renderTop(gpus, tasks, where, Date.now())}\n`);
      }
      return;
    }
    await live(client, where, delay, count ?? Infinity);
  });
}

function sleep(seconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

function parseInterval(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 3600) throw new InvalidArgumentError(`"${value}" is not an interval; expected seconds from 0.1 to 3600`);
  return n;
}

/** A count of frames; a fraction from 0.1 to 1 is the old -n (seconds), which no count can be. */
export function parseIterations(value: string): number | { readonly interval: number } {
  const n = Number(value);
  if (Number.isInteger(n) && n >= 1 && n <= 1_000_000) return n;
  if (Number.isFinite(n) && n >= 0.1 && n < 1) return { interval: n };
  throw new InvalidArgumentError(`"${value}" is not a number of frames; expected a whole number from 1 (-d sets the seconds between them)`);
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
  return `${head}\n\nBackend: ${gpus.description}\n${renderSliceTable(gpus.gpus)}\n\n${renderTasks(ordered, now)}`;
}

function rank(t: TaskBody): number {
  return t.state === 'running' ? 0 : t.state === 'queued' ? 1 : 2;
}

/** Redraws until q, Ctrl-C, SIGTERM or `frames` frames; a daemon that stops answering is shown, and retried. */
async function live(client: Client, where: string, seconds: number, frames: number): Promise<void> {
  const out = process.stdout;
  const stdin = process.stdin;
  out.write('\x1b[?1049h\x1b[?25l'); // alternate screen, cursor hidden: the terminal comes back as it was
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let drawn = 0;
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
      drawn += 1;
      if (drawn >= frames) {
        // The count is reached: the last frame stays on the terminal, as top(1) leaves it.
        stop();
        out.write(`${body}\n`);
        return;
      }
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
