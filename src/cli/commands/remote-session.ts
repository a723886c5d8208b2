/**
 * A remote GPU session as the CLI opens it (docs/remote.md): pure pieces of `gpushare remote
 * open` and `gpushare run --remote`. A session is a task whose command is the worker
 * (native/remote/worker.c) listening on a port of the daemon's machine; its key reaches the
 * worker through the task's environment and the local program through its own.
 */
import type { SubmitTask } from '../../contract/schemas.js';

/** What a session asks for: the slice, as `run` takes it, and where the worker listens. */
export interface SessionRequest {
  readonly workerPath: string;
  readonly key: string;
  /** The worker's port on the daemon's machine; 0: any free one (read back from its first line). */
  readonly port: number;
  /** How long the worker waits for its client, and for a frame once connected, in ms. */
  readonly acceptTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly memory?: string;
  readonly compute?: string;
  readonly priority?: string;
  readonly tenant?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** 32 bytes as 64 hex digits: the form GPUSHARE_REMOTE_KEY takes. */
export const SESSION_KEY = /^[0-9a-f]{64}$/;

/** The task that runs a session's worker: one GPU, the slice asked for, the key in its environment. */
export function sessionTask(req: SessionRequest): SubmitTask {
  if (!SESSION_KEY.test(req.key)) throw new Error('a session key is 64 lowercase hex digits');
  if (!Number.isInteger(req.port) || req.port < 0 || req.port > 65535) throw new Error(`port ${req.port} is not 0-65535`);
  return {
    command: [req.workerPath, '--listen', `0.0.0.0:${req.port}`, '--accept-timeout-ms', String(req.acceptTimeoutMs), '--idle-timeout-ms', String(req.idleTimeoutMs)],
    env: { ...(req.env ?? {}), GPUSHARE_REMOTE_KEY: req.key },
    gpus: 1,
    ...(req.memory !== undefined ? { memory: req.memory } : {}),
    ...(req.compute !== undefined ? { compute: req.compute } : {}),
    ...(req.priority !== undefined ? { priority: req.priority } : {}),
    ...(req.tenant !== undefined ? { tenant: req.tenant } : {}),
  };
}

/** The port in the worker's first line ("gpushare-remote-worker listening PORT"), or null. */
export function listeningPort(text: string): number | null {
  const m = /^gpushare-remote-worker listening (\d{1,5})$/m.exec(text);
  if (!m) return null;
  const port = Number(m[1]);
  return port > 0 && port <= 65535 ? port : null;
}

/**
 * The host the client reaches the worker at: the daemon's own host for a TCP daemon, the
 * loopback address for one on a Unix socket (which is on this machine).
 */
export function dataHost(daemon: { readonly kind: 'unix' } | { readonly kind: 'tcp'; readonly url: URL }): string {
  if (daemon.kind === 'unix') return '127.0.0.1';
  const host = daemon.url.hostname;
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * The local program's environment: the client libcuda.so.1's directory first on the library
 * path, so a program (or a runtime that dlopens libcuda.so.1) finds it; the endpoint and key.
 */
export function clientEnv(base: Readonly<Record<string, string | undefined>>, endpoint: string, key: string, clientLibDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) out[k] = v;
  const path = base['LD_LIBRARY_PATH'];
  out['LD_LIBRARY_PATH'] = path ? `${clientLibDir}:${path}` : clientLibDir;
  out['GPUSHARE_REMOTE'] = endpoint;
  out['GPUSHARE_REMOTE_KEY'] = key;
  return out;
}
