/**
 * `gpushare remote open`: a remote GPU session on a daemon (docs/remote.md), and what
 * `gpushare run --remote` uses to run a local program on it. The daemon opens the session
 * (POST /v1/remote/sessions): a task (listed by `ps`, limited, audited, killable) running its own
 * worker, which listens on the daemon's machine; the local program reaches it directly through
 * the client libcuda.so.1.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { OpenRemoteSession, RemoteSessionBody } from '../../contract/remote.js';
import { workerListening } from '../../contract/remote-worker.js';
import type { LogChunk, TaskBody } from '../../contract/schemas.js';
import { LIVE_STATES } from '../../contract/task.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import type { Client } from '../client.js';
import { clientEnv, dataHost } from './remote-session.js';
import { addHostOption, clientFor } from './tasks-common.js';

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The directory of the client libcuda.so.1 on this machine. */
export function clientLibDir(env: Readonly<Record<string, string | undefined>>): string {
  return env['GPUSHARE_REMOTE_CLIENT_DIR'] ?? join(PACKAGE_ROOT, 'build', 'native', 'remote');
}

export interface SessionFlags {
  readonly mem?: string;
  readonly cores?: string;
  readonly priority?: string;
  readonly tenant?: string;
  readonly port?: string;
  /** Seconds the worker waits for its client once it runs. */
  readonly connectTimeout?: string;
}

export interface OpenSession {
  readonly task: TaskBody;
  readonly endpoint: string;
  readonly key: string;
  /** The worker's certificate pin for a TLS session (docs/remote.md "TLS"); null: plaintext. */
  readonly tlsSha256: string | null;
}

function seconds(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 86400) throw new GsError(ErrorCodes.invalidArgument, `${what}: expected seconds, 1-86400, not "${value}"`);
  return n;
}

/**
 * Opens the session through the daemon (POST /v1/remote/sessions: the daemon makes the key,
 * starts its own worker, keeps the key out of the task) and, when it is still queued, waits for
 * its worker to listen: its endpoint and key. `say` tells once that it is queued; a session
 * that ends before it listens is an error naming the task's message.
 */
export async function openSession(client: Client, host: string, flags: SessionFlags, say: (line: string) => void, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): Promise<OpenSession> {
  const port = flags.port === undefined ? 0 : Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new GsError(ErrorCodes.invalidArgument, `--port: expected 0-65535, not "${flags.port ?? ''}"`);
  const body: OpenRemoteSession = {
    port,
    connectTimeoutSeconds: seconds(flags.connectTimeout, 60, '--connect-timeout'),
    ...(flags.mem !== undefined ? { memory: flags.mem } : {}),
    ...(flags.cores !== undefined ? { compute: flags.cores } : {}),
    ...(flags.priority !== undefined ? { priority: flags.priority } : {}),
    ...(flags.tenant !== undefined ? { tenant: flags.tenant } : {}),
  };
  const opened = await client.json<RemoteSessionBody>('POST', '/v1/remote/sessions', body);
  const { task, key } = opened;
  if (opened.port !== null) return { task, endpoint: `${host}:${opened.port}`, key, tlsSha256: opened.tls?.sha256 ?? null };
  let toldQueued = false;
  for (;;) {
    let text = '';
    let errors = '';
    await client.lines(`/v1/tasks/${task.id}/logs`, (value) => {
      const chunk = value as LogChunk;
      if (chunk.stream === 'stdout') text += chunk.data;
      else errors += chunk.data;
    });
    const listening = workerListening(text);
    if (listening !== null) {
      // A TLS session whose worker names no pin would make the client refuse it anyway: say why here.
      if (opened.tls !== null && listening.tlsSha256 === null) throw new GsError(ErrorCodes.invalidArgument, `remote session ${task.id}: TLS was asked, but its worker listens without it`);
      return { task, endpoint: `${host}:${listening.port}`, key, tlsSha256: opened.tls === null ? null : listening.tlsSha256 };
    }
    const now = await client.json<TaskBody>('GET', `/v1/tasks/${task.id}`);
    if (!LIVE_STATES.has(now.state)) {
      const said = errors.trim().split('\n').slice(-3).join(' / ');
      throw new GsError(ErrorCodes.invalidArgument, `remote session ${task.id} ${now.state} before its worker listened${now.message ? `: ${now.message}` : ''}${said ? ` (it said: ${said})` : ''}`);
    }
    if (now.state === 'queued' && !toldQueued) {
      say(`remote session ${task.id} is queued; it starts when its slice fits (Ctrl-C leaves it queued: gpushare kill ${task.id})`);
      toldQueued = true;
    }
    await sleep(100);
  }
}

/**
 * Runs `command` here against the session: the client library first on the library path.
 * Resolves with the exit status (128+N for signal N); then the worker, whose client is gone,
 * ends; if it has not within a few seconds it is killed, so the slice is given back.
 */
export async function runAgainst(client: Client, session: OpenSession, command: readonly string[], sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): Promise<number> {
  const env = clientEnv(process.env, session.endpoint, session.key, clientLibDir(process.env), session.tlsSha256);
  const [program, ...args] = command;
  if (program === undefined) throw new GsError(ErrorCodes.invalidArgument, 'no command to run');
  const status = await new Promise<number>((resolve) => {
    const child = spawn(program, args, { stdio: 'inherit', env });
    child.on('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(`gpushare: cannot run "${program}": ${err.message}\n`);
      resolve(err.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : signalNumber(signal))));
  });
  for (let i = 0; i < 50; i++) {
    const now = await client.json<TaskBody>('GET', `/v1/tasks/${session.task.id}`);
    if (!LIVE_STATES.has(now.state)) return status;
    await sleep(100);
  }
  await client.json('POST', `/v1/tasks/${session.task.id}/kill`, { signal: 'SIGKILL' });
  return status;
}

function signalNumber(signal: NodeJS.Signals): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
  return table[signal] ?? 0;
}

/** The session options `remote open` and `run --remote` share. */
export function addSessionOptions(cmd: Command): Command {
  return cmd
    .option('--port <n>', "the worker's port on the daemon's machine (default: any free one)")
    .option('--connect-timeout <seconds>', 'how long the worker waits for its client once it runs (default 60)');
}

export function registerRemote(program: Command): void {
  const remote = program.command('remote').description('remote GPU sessions: a slice of a GPU on the daemon\'s machine for programs run here (docs/remote.md)');
  const open = remote
    .command('open')
    .description('open a session (a task running the session\'s worker) and print the environment that points a program at it')
    .option('--mem <size>', 'GPU memory: 8Gi, 8192Mi, 50% (default: the whole GPU)')
    .option('--cores <percent>', 'compute, percent: 30 (default: no limit)')
    .option('--priority <p>', 'low, normal (default), high or 0-1000')
    .option('--tenant <name>', 'open it for this tenant')
    .addHelpText('after', `
Example:
  eval "$(gpushare remote open --host https://gpu1:7070 --mem 8Gi)" && ./my-cuda-program

The session takes one client: the first program that connects with its key. It ends (and gives
its slice back) when that program exits, or when none connects within --connect-timeout.
`);
  addSessionOptions(addHostOption(open)).action(async (flags: SessionFlags & { host?: string }) => {
    const client = await clientFor(flags);
    const { resolveTarget } = await import('../client.js');
    const host = dataHost(resolveTarget(flags.host, process.env));
    const session = await openSession(client, host, flags, (line) => process.stderr.write(`gpushare: ${line}\n`));
    process.stderr.write(`gpushare: remote session ${session.task.id} listening at ${session.endpoint}\n`);
    const env = clientEnv({ LD_LIBRARY_PATH: process.env['LD_LIBRARY_PATH'] }, session.endpoint, session.key, clientLibDir(process.env), session.tlsSha256);
    // The pin's line is printed empty for a plaintext session, so no pin left from an earlier one applies.
    for (const name of ['LD_LIBRARY_PATH', 'GPUSHARE_REMOTE', 'GPUSHARE_REMOTE_KEY', 'GPUSHARE_REMOTE_TLS_SHA256']) process.stdout.write(`export ${name}='${env[name] ?? ''}'\n`);
  });
}
