/**
 * A session opened through the daemon (docs/remote.md "Opening a session"): POST
 * /v1/remote/sessions with the caller's bearer token, then, for a session still queued, its
 * worker's first output line read from the task's log (its port, and its certificate's pin for a
 * TLS session). What the SDK needs to connect: the endpoint, the key, the pin, the task.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { fromErrorBody } from '../../contract/error-body.js';
import { workerListening } from '../../contract/remote-worker.js';
import { LIVE_STATES } from '../../contract/task.js';
import type { OpenRemoteSession, RemoteSessionBody } from '../../contract/remote.js';
import type { TaskBody } from '../../contract/schemas.js';
import { badArgument } from './errors.js';

export interface DaemonOptions {
  /** The daemon: `https://HOST:PORT` (or `http://`), or its Unix socket's path (`unix:PATH` or an absolute path). */
  readonly daemon: string;
  /** A bearer token of the caller's (TCP daemons). */
  readonly token?: string;
  /** The CA the daemon's certificate is checked against (https), PEM; else the system's. */
  readonly ca?: string | Buffer;
  /** GPU memory: 8Gi, 8192Mi, 50%, or bytes (default: the whole GPU). */
  readonly memory?: string | number;
  /** Compute, percent (default: no limit). */
  readonly compute?: string | number;
  readonly priority?: string | number;
  readonly tenant?: string;
  /** TLS on the data path (default: the daemon's choice: on when this request came over TLS). */
  readonly tls?: boolean;
  /** How long the worker waits for this client once it runs (default 60). */
  readonly connectTimeoutSeconds?: number;
  /** How long to wait for a queued session to start (default 60 s); then the argument error names the task. */
  readonly queueWaitMs?: number;
}

export interface OpenedSession {
  readonly task: string;
  readonly endpoint: string;
  readonly key: string;
  readonly tlsSha256: string | undefined;
}

type Target = { readonly socketPath: string } | { readonly url: URL };

function target(daemon: string): Target {
  if (/^https?:\/\//.test(daemon)) return { url: new URL(daemon) };
  const path = daemon.startsWith('unix:') ? daemon.slice(5) : daemon;
  if (!path.startsWith('/')) throw badArgument(`daemon "${daemon.slice(0, 200)}": an http(s):// URL or a Unix socket's absolute path`);
  return { socketPath: path };
}

/** One request to the daemon: the parsed JSON (or text) body; its error body as a GsError. */
function ask(o: DaemonOptions, t: Target, method: string, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (data) headers['content-type'] = 'application/json';
    if (o.token) headers['authorization'] = `Bearer ${o.token}`;
    const done = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const json = (res.headers['content-type'] ?? '').includes('json') ? (JSON.parse(text) as unknown) : text;
        if ((res.statusCode ?? 500) >= 400) reject(fromErrorBody(res.statusCode ?? 500, json));
        else resolve(json);
      });
      res.on('error', reject);
    };
    const req =
      'socketPath' in t
        ? httpRequest({ socketPath: t.socketPath, path, method, headers }, done)
        : (t.url.protocol === 'https:' ? httpsRequest : httpRequest)({ hostname: t.url.hostname, port: t.url.port, path, method, headers, ...(o.ca ? { ca: o.ca } : {}) }, done);
    req.on('error', (err) => reject(new GsError(ErrorCodes.daemonUnreachable, `cannot reach the daemon at ${o.daemon}: ${err.message}`, { cause: err })));
    req.end(data);
  });
}

/** The host the worker is reached at: the daemon's own for TCP, loopback for a Unix socket. */
function dataHost(t: Target): string {
  if ('socketPath' in t) return '127.0.0.1';
  const h = t.url.hostname;
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

/** Opens the session through the daemon and waits (up to queueWaitMs) for its worker to listen. */
export async function openThroughDaemon(o: DaemonOptions, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): Promise<OpenedSession> {
  const t = target(o.daemon);
  const body: OpenRemoteSession = {
    ...(o.memory !== undefined ? { memory: o.memory } : {}),
    ...(o.compute !== undefined ? { compute: o.compute } : {}),
    ...(o.priority !== undefined ? { priority: o.priority } : {}),
    ...(o.tenant !== undefined ? { tenant: o.tenant } : {}),
    ...(o.tls !== undefined ? { tls: o.tls } : {}),
    ...(o.connectTimeoutSeconds !== undefined ? { connectTimeoutSeconds: o.connectTimeoutSeconds } : {}),
  };
  // `tls` is the data path's pin where the session has TLS (docs/remote.md "TLS"), null without.
  const opened = (await ask(o, t, 'POST', '/v1/remote/sessions', body)) as RemoteSessionBody;
  const task = opened.task.id;
  const host = dataHost(t);
  if (opened.port !== null) return { task, endpoint: opened.endpoint ?? `${host}:${opened.port}`, key: opened.key, tlsSha256: opened.tls?.sha256 ?? undefined };
  const until = Date.now() + (o.queueWaitMs ?? 60_000);
  for (;;) {
    const log = String(await ask(o, t, 'GET', `/v1/tasks/${task}/logs?stream=stdout`));
    const listening = workerListening(log);
    if (listening !== null) return { task, endpoint: `${host}:${listening.port}`, key: opened.key, tlsSha256: listening.tlsSha256 ?? undefined };
    const now = (await ask(o, t, 'GET', `/v1/tasks/${task}`)) as TaskBody;
    if (!LIVE_STATES.has(now.state)) throw new GsError(ErrorCodes.conflict, `remote session ${task} ${now.state} before its worker listened${now.message ? `: ${now.message}` : ''}`);
    if (Date.now() > until) throw new GsError(ErrorCodes.conflict, `remote session ${task} is still ${now.state} after ${o.queueWaitMs ?? 60_000} ms (it stays queued: gpushare kill ${task})`);
    await sleep(200);
  }
}
