/**
 * A session's worker for the SDK's tests, as run_remote_tests.sh starts one: the built
 * gpushare-remote-worker on the fake driver, listening on a free loopback port with a fresh key.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { REPO_ROOT } from '../helpers/cli.js';

export const NATIVE = `${REPO_ROOT}build/native`;
export const WORKER = `${NATIVE}/gpushare-remote-worker`;
export const workerBuilt = existsSync(WORKER) && existsSync(`${NATIVE}/fake/libcuda.so.1`);

export interface Worker {
  readonly endpoint: string;
  readonly key: string;
  /** With --tls: the certificate's SHA-256 from the listening line. */
  readonly tlsSha256: string | undefined;
  readonly pid: number;
  /** Its exit status and everything it said on stderr, once it ended. */
  readonly ended: Promise<{ code: number | null; signal: string | null; stderr: string }>;
  kill(signal?: NodeJS.Signals): void;
}

/** A worker; `env` adds to its environment (GPUSHARE_FAKE_CUDA, LD_PRELOAD, limits), `args` to its command line. */
export async function startWorker(env: Record<string, string> = {}, args: string[] = []): Promise<Worker> {
  const key = randomBytes(32).toString('hex');
  const child = spawn(WORKER, ['--listen', '127.0.0.1:0', '--accept-timeout-ms', '20000', ...args], {
    env: { ...process.env, LD_LIBRARY_PATH: `${NATIVE}/fake`, GPUSHARE_REMOTE_KEY: key, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  const ended = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stderr })));
  const [port, tlsSha256] = await new Promise<[number, string | undefined]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += String(d);
      const m = /^gpushare-remote-worker listening (\d+)(?: tls-sha256 ([0-9a-f]{64}))?$/m.exec(out);
      if (m) resolve([Number(m[1]), m[2]]);
    });
    void ended.then((e) => reject(new Error(`the worker ended before listening: ${e.code ?? e.signal} ${e.stderr}`)));
  });
  return { endpoint: `127.0.0.1:${port}`, key, tlsSha256, pid: child.pid as number, ended, kill: (signal = 'SIGKILL') => child.kill(signal) };
}
