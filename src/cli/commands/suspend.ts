import type { Command } from 'commander';
import type { Client } from '../client.js';
import type { GpusResponse, TaskBody } from '../../contract/schemas.js';
import { formatBytes } from '../../domain/index.js';
import { addHostOption, clientFor } from './tasks-common.js';

/** How long a suspend or resume may take to answer at least (--timeout can only lengthen it): moving tens of GB. */
const CHECKPOINT_ANSWER_MS = 10 * 60_000;

interface EventBody {
  readonly seq: number;
  readonly type: string;
  readonly taskId: string | null;
  readonly data: Record<string, unknown>;
}

/** What one suspend or resume did, as `--json` prints it. */
export interface CheckpointOutcome {
  readonly id: string;
  readonly state: string;
  /** The daemon's own time for the operation (lock + checkpoint + stop, or continue + restore + unlock); null when it did not run (a resume waiting for room). */
  readonly ms: number | null;
  /** GPU memory the task's processes held, moved to host memory (suspend) or back (resume), from its region; null when unknown. */
  readonly gpuBytes: number | null;
  readonly gpus: readonly string[] | null;
  readonly moved: boolean | null;
  readonly seconds: number;
  /** How the memory moved: `swap` (libgpushare's slice swap) or `checkpoint` (the CUDA checkpoint API); null when it did not run. */
  readonly path: 'swap' | 'checkpoint' | null;
  /** Slice swap's rate (bytes the library moved / its seconds, in GB/s); null for the checkpoint path. */
  readonly gbps: number | null;
  /** Why slice swap was not used when the daemon tried it first (the checkpoint API then ran). */
  readonly swapRefused: string | null;
  /** A move of a swapped-out task: its steps' seconds (checkpoint of the rest, restore onto the new GPUs, swap-in there); null otherwise. */
  readonly move: MoveTimingsBody | null;
}

export interface MoveTimingsBody {
  readonly checkpointSeconds: number;
  readonly restoreSeconds: number;
  readonly swapInSeconds: number;
}

function isMoveTimings(v: unknown): v is MoveTimingsBody {
  return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)['swapInSeconds'] === 'number';
}

type Op = 'suspend' | 'resume' | 'move';

/** `gpushare suspend ID...` and `gpushare resume ID...`: progress on a terminal, one final line (or JSON) per task. */
export function registerSuspend(program: Command): void {
  const suspend = program
    .command('suspend')
    .description("suspend running tasks: their GPU memory goes to host memory and their processes stop, freeing the GPU (CUDA checkpoint)")
    .argument('<id...>', 'task ids or unique prefixes')
    .option('--json', 'print a JSON array: per task its state, the time taken (ms) and the GPU bytes moved');
  addHostOption(suspend).action((ids: string[], flags: { host?: string; json?: boolean }) => operateAll('suspend', ids, flags));
  const resume = program
    .command('resume')
    .description('resume suspended tasks on their GPUs (or others of the same model); without room they wait (state suspended) and resume when room returns')
    .argument('<id...>', 'task ids or unique prefixes')
    .option('--json', 'print a JSON array: per task its state, the time taken (ms) and the GPU bytes moved');
  addHostOption(resume).action((ids: string[], flags: { host?: string; json?: boolean }) => operateAll('resume', ids, flags));
}

async function operateAll(op: Op, ids: readonly string[], flags: { host?: string; json?: boolean }): Promise<void> {
  const client = await clientFor(flags);
  // Progress only where someone watches: a terminal on stderr. Scripts get the final lines alone.
  const progress = process.stderr.isTTY === true ? new Spinner(process.stderr) : null;
  const outcomes: CheckpointOutcome[] = [];
  try {
    for (const id of ids) {
      const outcome = await operate(client, op, id, progress);
      progress?.stop();
      outcomes.push(outcome);
      if (!flags.json) process.stdout.write(`${finalLine(op, outcome)}\n`);
    }
  } finally {
    progress?.stop();
    if (flags.json && outcomes.length > 0) process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
  }
}

/** One task: the request runs while the task's events are polled for the progress line. */
export async function operate(client: Client, op: Op, idOrPrefix: string, progress: Spinner | null, body: unknown = {}): Promise<CheckpointOutcome> {
  const started = performance.now();
  const before = await client.json<TaskBody>('GET', `/v1/tasks/${encodeURIComponent(idOrPrefix)}`);
  const since = await lastEventSeq(client);
  let held: number | null = null;
  if (progress) {
    held = await heldBytes(client, before.id).catch(() => null);
    const what = op === 'suspend' ? 'suspending' : op === 'move' ? 'moving' : 'resuming';
    const size = held !== null && held > 0 ? ` - ${formatBytes(held)} of GPU memory ${op === 'suspend' ? 'to host memory' : 'back to the GPU'}` : '';
    progress.start(`${what} ${before.id}${size}`);
  }
  let seen = since;
  const poll = async (): Promise<EventBody[]> => {
    const all = await client.json<EventBody[]>('GET', `/v1/events?since=${seen}&limit=10000`);
    seen = all.at(-1)?.seq ?? seen;
    const mine = all.filter((e) => e.taskId === before.id);
    for (const e of mine) progress?.note(describeEvent(e));
    return mine;
  };
  // It answers once the task's GPU memory has moved: longer than an ordinary request may take.
  const request = client.json<TaskBody>('POST', `/v1/tasks/${encodeURIComponent(before.id)}/${op}`, op === 'move' ? body : undefined, {}, { atLeastMs: CHECKPOINT_ANSWER_MS });
  const events: EventBody[] = [];
  let settled = false;
  void request.then(
    () => (settled = true),
    () => (settled = true),
  );
  while (progress && !settled) {
    await Promise.race([request.catch(() => undefined), sleep(500)]);
    if (!settled) events.push(...(await poll().catch(() => [])));
  }
  const task = await request;
  events.push(...(await poll().catch(() => [])));
  const done = [...events].reverse().find((e) => e.type === (op === 'suspend' ? 'task.suspended' : 'task.resumed'));
  const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
  return {
    id: task.id,
    state: task.state,
    ms: num(done?.data['ms']),
    gpuBytes: num(done?.data['gpuBytes']) ?? (done ? held : null),
    gpus: Array.isArray(done?.data['gpus']) ? (done.data['gpus'] as string[]) : null,
    moved: typeof done?.data['moved'] === 'boolean' ? done.data['moved'] : null,
    seconds: Math.round((performance.now() - started) / 10) / 100,
    path: done?.data['path'] === 'swap' || done?.data['path'] === 'checkpoint' ? done.data['path'] : null,
    gbps: num(done?.data['gbps']),
    swapRefused: typeof done?.data['swapRefused'] === 'string' ? done.data['swapRefused'] : null,
    move: isMoveTimings(done?.data['move']) ? done.data['move'] : null,
  };
}

export function finalLine(op: Op, o: CheckpointOutcome): string {
  const time = o.ms !== null ? `${(o.ms / 1000).toFixed(o.path === 'swap' ? 2 : 1)} s` : `${o.seconds.toFixed(1)} s`;
  const bytes = o.gpuBytes !== null ? `, ${formatBytes(o.gpuBytes)} of GPU memory` : '';
  const how = pathNote(o);
  if (op === 'suspend') return o.state === 'suspended' ? `${o.id} suspended in ${time}${bytes} moved to host memory${how}` : `${o.id} ${o.state}`;
  if (op === 'move') return o.state === 'running' && o.moved === true ? `${o.id} moved to ${(o.gpus ?? []).join(', ')} in ${time}${bytes}${how}${moveSteps(o)}` : `${o.id} ${o.state}`;
  if (o.state === 'suspended') return `${o.id} suspended (waiting for room; resumes by itself)`;
  const where = o.moved ? ` onto another GPU (${(o.gpus ?? []).join(', ')})` : '';
  return o.ms !== null ? `${o.id} ${o.state}, resumed in ${time}${bytes} restored${where}${how}` : `${o.id} ${o.state}`;
}

/** " (checkpoint 0.12 s, restore 0.10 s, swap-in 0.20 s)": a swapped task's move, step by step. */
function moveSteps(o: CheckpointOutcome): string {
  const m = o.move;
  return m === null ? '' : ` (checkpoint ${m.checkpointSeconds.toFixed(2)} s, restore ${m.restoreSeconds.toFixed(2)} s, swap-in ${m.swapInSeconds.toFixed(2)} s)`;
}

/** " by slice swap (12.3 GB/s)", " through the checkpoint API (slice swap: why not)", or nothing (checkpoint API only). */
function pathNote(o: CheckpointOutcome): string {
  if (o.path === 'swap') return ` by slice swap${o.gbps !== null ? ` (${o.gbps} GB/s)` : ''}`;
  if (o.path === 'checkpoint' && o.swapRefused !== null) return ` through the checkpoint API (slice swap: ${o.swapRefused})`;
  return '';
}

function describeEvent(e: EventBody): string {
  const d = e.data;
  switch (e.type) {
    case 'task.suspending':
      return `suspending (${typeof d['preemptedBy'] === 'string' ? `preempted by ${d['preemptedBy']}` : `asked by ${String(d['by'])}`}): draining its GPU work, then copying its GPU memory to host memory`;
    case 'task.suspended':
      return `suspended in ${(Number(d['ms']) / 1000).toFixed(1)} s: ${typeof d['gpuBytes'] === 'number' ? formatBytes(d['gpuBytes']) : 'its GPU memory'} moved${d['path'] === 'swap' ? ' by slice swap' : ''}, ${String(d['processes'])} CUDA process(es) stopped`;
    case 'task.resuming':
      return `resuming on ${Array.isArray(d['gpus']) ? d['gpus'].join(', ') : 'its GPUs'}${d['moved'] === true ? ' (another GPU: remapped)' : ''}`;
    case 'task.resumed':
      return `resumed in ${(Number(d['ms']) / 1000).toFixed(1)} s`;
    default:
      return `${e.type}${typeof d['message'] === 'string' ? `: ${d['message']}` : ''}`;
  }
}

/** The newest event's seq: progress shows only what happens from now on. */
async function lastEventSeq(client: Client): Promise<number> {
  let since = 0;
  for (;;) {
    const page = await client.json<EventBody[]>('GET', `/v1/events?since=${since}&limit=10000`);
    if (page.length === 0) return since;
    since = page.at(-1)?.seq ?? since;
    if (page.length < 10000) return since;
  }
}

/** What the task's processes hold on its GPUs now (from its region, via /v1/gpus), or null before its first CUDA call. */
async function heldBytes(client: Client, id: string): Promise<number | null> {
  const res = await client.json<GpusResponse>('GET', '/v1/gpus');
  const used = res.gpus.flatMap((g) => g.slices.filter((s) => s.taskId === id).map((s) => s.usedMemoryBytes));
  return used.length === 0 || used.some((u) => u === null) ? null : used.reduce<number>((a, b) => a + (b ?? 0), 0);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

const FRAMES = ['|', '/', '-', '\\'];

/** One status line on a terminal, redrawn in place: a spinner and the elapsed time; events go above it. */
export class Spinner {
  private timer: NodeJS.Timeout | null = null;
  private label = '';
  private startedAt = 0;
  private frame = 0;

  constructor(private readonly out: NodeJS.WriteStream) {}

  start(label: string): void {
    this.stop();
    this.label = label;
    this.startedAt = performance.now();
    this.draw();
    this.timer = setInterval(() => this.draw(), 100);
  }

  /** An event: printed on its own line above the spinner. */
  note(text: string): void {
    this.clear();
    this.out.write(`  ${text}\n`);
    this.draw();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.timer) this.clear();
    this.timer = null;
  }

  private clear(): void {
    this.out.write('\r\x1b[2K');
  }

  private draw(): void {
    const secs = ((performance.now() - this.startedAt) / 1000).toFixed(1);
    const width = Math.max(20, (this.out.columns || 80) - 1);
    const line = `${FRAMES[this.frame++ % FRAMES.length] ?? '|'} ${this.label} - ${secs} s`;
    this.clear();
    this.out.write(line.length > width ? `${line.slice(0, width - 1)}~` : line);
  }
}
