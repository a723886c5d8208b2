import { InvalidArgumentError, Option, type Command } from 'commander';
import { constants } from 'node:os';
import type { LogChunk, SubmitTask, TaskBody } from '../../contract/schemas.js';
import { ErrorCodes, GsError, isGsError } from '../../domain/index.js';
import type { Client } from '../client.js';
import { submit } from './submit.js';
import { addHostOption, clientFor } from './tasks-common.js';
import { LIVE_STATES } from '../../contract/task.js';

interface RunFlags {
  readonly host?: string;
  readonly gpus?: string;
  readonly mem?: string;
  readonly cores?: string;
  readonly coresAccounting?: string;
  readonly priority?: string;
  readonly gpuModel?: string[];
  readonly isolation?: string;
  readonly env?: string[];
  readonly tenant?: string;
  readonly detach?: boolean;
  readonly preserveEnv?: boolean;
  readonly remote?: string;
  readonly port?: string;
  readonly connectTimeout?: string;
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('run a command on a GPU slice through the daemon; waits for it and exits with its code')
    .argument('<command...>', 'the program and its arguments (put them after --)')
    .option('--gpus <n>', 'number of GPUs (default 1; 0 for a CPU-only task)')
    .option('--mem <size>', 'GPU memory per GPU: 8Gi, 8192Mi, 50% (default: the whole GPU)')
    .option('--cores <percent>', 'compute per GPU, percent: 30 (default: no limit)')
    .addOption(new Option('--cores-accounting <what>', "what --cores is a share of: throughput, the program's unlimited throughput (default); gpu, the GPU's clock-weighted time; time, the GPU's time").choices(['throughput', 'gpu', 'time']))
    .option('--priority <p>', 'low, normal (default), high or 0-1000; higher runs first')
    .option('--gpu-model <model...>', 'only GPUs of these models, e.g. H100-80GB')
    .addOption(new Option('--isolation <mode>', 'how the slice shares its GPU').choices(['time-slice', 'sm-partition', 'exclusive']))
    .option('-e, --env <KEY=VALUE...>', 'set a variable in the task (repeatable)', collectEnv)
    .option('-E, --preserve-env', 'give the task your whole environment (default: only your PATH, so commands resolve as in your shell)')
    .option('--tenant <name>', 'submit for this tenant')
    .option('-d, --detach', 'print the task id and return; see `gpushare logs -f ID`')
    .option('--remote <daemon>', "run the command here, on a remote GPU session of that daemon's machine (docs/remote.md): a socket path or http(s)://host:port")
    .option('--port <n>', "with --remote: the session worker's port on the daemon's machine (default: any free one)")
    .option('--connect-timeout <seconds>', 'with --remote: how long the worker waits for the command to connect (default 60)')
    .passThroughOptions()
    .addHelpText('after', `
Examples:
  gpushare run --mem 8Gi --cores 30 -- python train.py
  gpushare run -d --priority high --gpus 2 -- ./bench.sh
  gpushare run --gpus 0 -- sh -c 'echo no GPU needed'
  gpushare run --remote https://gpu1:7070 --mem 8Gi -- ./my-cuda-program

The task starts from a clean environment (its user's HOME, USER, the daemon's locale), plus your
PATH, plus -e variables (or, with -E, all of yours but GPUSHARE_*); it never sees the daemon's.

Ctrl-C sends SIGINT to the task (a second Ctrl-C sends SIGKILL); the task's exit code becomes
gpushare's (128+N when a signal N ended it).
`);
  addHostOption(cmd).action(async (command: string[], flags: RunFlags) => {
    if (flags.remote !== undefined) {
      process.exitCode = await runRemote(command, flags.remote, flags);
      return;
    }
    const client = await clientFor(flags);
    const body: SubmitTask = {
      command,
      cwd: process.cwd(),
      env: { ...passedEnv(process.env, flags.preserveEnv === true), ...Object.fromEntries((flags.env ?? []).map(splitEnv)) },
      ...(flags.gpus !== undefined ? { gpus: flags.gpus } : {}),
      ...(flags.mem !== undefined ? { memory: flags.mem } : {}),
      ...(flags.cores !== undefined ? { compute: flags.cores } : {}),
      ...(flags.coresAccounting !== undefined ? { computeAccounting: flags.coresAccounting } : {}),
      ...(flags.priority !== undefined ? { priority: flags.priority } : {}),
      ...(flags.gpuModel ? { models: { include: flags.gpuModel } } : {}),
      ...(flags.isolation !== undefined ? { isolation: flags.isolation } : {}),
      ...(flags.tenant !== undefined ? { tenant: flags.tenant } : {}),
    };
    const task = await submit(client, body);
    if (flags.detach) {
      process.stdout.write(`${task.id}\n`);
      return;
    }
    // A task is answered as stored, before the pass that starts it: only one the pass left waiting says why.
    if (task.state === 'queued' && task.waiting !== null) process.stderr.write(`gpushare: task ${task.id} is queued; it starts when its slice fits (Ctrl-C cancels it)\n`);
    process.exitCode = await attach(client, task.id);
  });
}

/** `run --remote`: a session on that daemon's machine, the command run here against it. */
async function runRemote(command: string[], daemon: string, flags: RunFlags): Promise<number> {
  const { openSession, runAgainst } = await import('./remote.js');
  const { dataHost } = await import('./remote-session.js');
  const { resolveTarget } = await import('../client.js');
  const client = await clientFor({ ...flags, host: daemon });
  const say = (line: string): void => void process.stderr.write(`gpushare: ${line}\n`);
  const session = await openSession(client, dataHost(resolveTarget(daemon, process.env)), flags, say);
  return runAgainst(client, session, command);
}

/** How long `run` waits between attempts to reach a daemon that went away, and how long it keeps trying. */
const REATTACH_DELAYS_MS = [250, 500, 1000, 2000, 5000];
const REATTACH_FOR_MS = 120_000;

export interface AttachOptions {
  readonly say?: (line: string) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  /** How long to keep trying to reach a daemon that went away (a restart takes seconds). */
  readonly reattachForMs?: number;
}

/**
 * Streams the task's output until it ends, forwarding Ctrl-C; returns the exit status to use.
 * When the daemon goes away (a restart, a crash, no answer to a keepalive) the task goes on
 * (the daemon keeps tasks across restarts): `run` says so on stderr, tries to reach it again
 * with backoff, and follows the task again where its output stopped (the daemon replays the
 * logs from their start: what was printed already is skipped).
 */
export async function attach(client: Client, id: string, options: AttachOptions = {}): Promise<number> {
  const say = options.say ?? ((line: string) => process.stderr.write(`gpushare: ${line}\n`));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let interrupts = 0;
  const onInterrupt = (): void => {
    interrupts += 1;
    const signal = interrupts === 1 ? 'SIGINT' : 'SIGKILL';
    client.json('POST', `/v1/tasks/${id}/kill`, { signal }).catch(() => undefined);
  };
  process.on('SIGINT', onInterrupt);
  // Characters written per stream: a replay from the start skips them.
  const written = { stdout: 0, stderr: 0 };
  try {
    for (;;) {
      try {
        const skip = { ...written };
        await client.lines(
          `/v1/tasks/${id}/logs?follow=1`,
          (value) => {
            const chunk = value as LogChunk;
            const left = chunk.data.slice(Math.min(skip[chunk.stream], chunk.data.length));
            skip[chunk.stream] = Math.max(0, skip[chunk.stream] - chunk.data.length);
            if (left === '') return;
            written[chunk.stream] += left.length;
            (chunk.stream === 'stderr' ? process.stderr : process.stdout).write(left);
          },
          `/v1/tasks/${id}`,
        );
        const done = await client.json<TaskBody>('GET', `/v1/tasks/${id}`);
        // The stream also ends when the daemon shuts down while the task goes on.
        if (!LIVE_STATES.has(done.state)) return exitStatusOf(done);
        say(`the daemon at ${client.where} ended the output stream of task ${id} (shutting down?); the task goes on`);
      } catch (err) {
        if (!(isGsError(err) && err.code === ErrorCodes.daemonUnreachable)) throw err;
        say(`${err.message}; task ${id} goes on`);
      }
      await reattach(client, id, say, sleep, options.reattachForMs ?? REATTACH_FOR_MS, () => interrupts);
    }
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

/** Waits with backoff until the daemon answers about the task again; gives up after `forMs` or a second Ctrl-C. */
async function reattach(client: Client, id: string, say: (line: string) => void, sleep: (ms: number) => Promise<void>, forMs: number, interrupts: () => number): Promise<void> {
  const giveUpAt = Date.now() + forMs;
  say(`reconnecting to the daemon at ${client.where} (for up to ${Math.round(forMs / 1000)} s; Ctrl-C twice stops waiting)...`);
  for (let attempt = 0; ; attempt++) {
    await sleep(REATTACH_DELAYS_MS[Math.min(attempt, REATTACH_DELAYS_MS.length - 1)] ?? 5000);
    try {
      await client.json<TaskBody>('GET', `/v1/tasks/${id}`);
      say(`reconnected to the daemon at ${client.where}; following task ${id} again`);
      return;
    } catch (err) {
      if (!(isGsError(err) && err.code === ErrorCodes.daemonUnreachable)) throw err;
      if (Date.now() >= giveUpAt || interrupts() >= 2) {
        throw new GsError(err.code, `${err.message}; gave up reconnecting; task ${id} is not affected: see it again with \`gpushare logs -f ${id}\``, { cause: err });
      }
    }
  }
}

/**
 * Exit statuses of `run` itself, as docker's: its own failure (the daemon, the request, a task
 * that ended without a code of its own) 125, a command that could not be executed 126, a
 * command not found 127. Any other status is the task's own.
 */
export const RUN_EXIT = { failure: 125, cannotInvoke: 126, notFound: 127 } as const;

/**
 * The task's code, or 128+N for signal N (the shell's convention); for a task that never ran,
 * 127 or 126 (the daemon's "cannot run" message, ending.ts, names the errno); 125 otherwise.
 */
export function exitStatusOf(task: TaskBody): number {
  if (task.exitCode !== null) return task.exitCode;
  if (task.signal !== null) {
    const n = (constants.signals as Record<string, number | undefined>)[task.signal];
    if (n !== undefined) return 128 + n;
  }
  if (task.message) process.stderr.write(`gpushare: task ${task.id} ${task.state}: ${task.message}\n`);
  const cannotRun = task.state === 'failed' ? /^cannot run ".*": .* \((E[A-Z0-9]+)\)$/s.exec(task.message ?? '') : null;
  if (cannotRun) return cannotRun[1] === 'ENOENT' ? RUN_EXIT.notFound : RUN_EXIT.cannotInvoke;
  return RUN_EXIT.failure;
}

/**
 * What of the caller's environment goes with the task: PATH, so that `gpushare run -- python`
 * runs the python the caller's shell would; with -E all of it but the CLI's own GPUSHARE_*
 * settings (the host and the token are not the task's business).
 */
export function passedEnv(env: Readonly<Record<string, string | undefined>>, all: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || k.startsWith('GPUSHARE_')) continue;
    if (all || k === 'PATH') out[k] = v;
  }
  return out;
}

function collectEnv(value: string, previous: string[] | undefined): string[] {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(value)) throw new InvalidArgumentError(`"${value}" is not KEY=VALUE`);
  return [...(previous ?? []), value];
}

function splitEnv(kv: string): [string, string] {
  const i = kv.indexOf('=');
  return [kv.slice(0, i), kv.slice(i + 1)];
}
