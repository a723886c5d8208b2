/**
 * The CLI's way to the daemon: HTTP over the Unix socket (default) or TCP with a bearer token.
 * Errors come back as GsErrors with the daemon's codes, so exit statuses match local errors.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { ErrorCodes, GsError, isGsError } from '../domain/index.js';
import { fromErrorBody } from '../contract/error-body.js';
import { defaultSocketPath } from '../contract/paths.js';

export type Target = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly url: URL; readonly token: string | undefined; readonly tls?: TlsClient };

/** What an https:// client trusts and shows: a CA for the daemon's certificate, a certificate of its own for mutual TLS. */
export interface TlsClient {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/**
 * `--host`, else GPUSHARE_HOST, else the default socket. A path (or `unix:PATH`) is a socket;
 * `http(s)://` is TCP. For https: `caFile` (--ca-file, GPUSHARE_CA_FILE) is the CA the daemon's
 * certificate is checked against (else the system's); GPUSHARE_CLIENT_CERT and
 * GPUSHARE_CLIENT_KEY are this client's own, for a daemon that asks for one.
 */
export function resolveTarget(host: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env, caFile: string | undefined = env['GPUSHARE_CA_FILE']): Target {
  const value = host ?? env['GPUSHARE_HOST'] ?? defaultSocketPath(env, userInfo().uid);
  if (/^https?:\/\//.test(value)) {
    const url = new URL(value);
    const token = env['GPUSHARE_TOKEN'];
    if (url.protocol === 'http:') return { kind: 'tcp', url, token };
    const file = (what: string, path: string | undefined): Buffer | undefined => {
      if (path === undefined || path === '') return undefined;
      try {
        return readFileSync(path);
      } catch (cause) {
        throw new GsError(ErrorCodes.invalidArgument, `cannot read the ${what} ${path}: ${(cause as Error).message}`, { cause });
      }
    };
    const ca = file('CA file (--ca-file, GPUSHARE_CA_FILE)', caFile);
    const cert = file('client certificate (GPUSHARE_CLIENT_CERT)', env['GPUSHARE_CLIENT_CERT']);
    const key = file('client key (GPUSHARE_CLIENT_KEY)', env['GPUSHARE_CLIENT_KEY']);
    return { kind: 'tcp', url, token, tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } };
  }
  const path = value.startsWith('unix:') ? value.slice(5) : value;
  if (!path.includes('/')) throw new GsError(ErrorCodes.invalidArgument, `--host "${value}" is neither a socket path nor an http:// URL`);
  return { kind: 'unix', path };
}

/** How long the CLI waits for the daemon. */
export interface Timeouts {
  /** For the connection (the Unix socket accepted, the TCP and TLS handshakes done). */
  readonly connectMs: number;
  /**
   * For an answer, body included; 0: no limit. A stream (logs -f, an attached run) has none once
   * its answer began: after this long silent (10 s at most) the daemon is asked a cheap question
   * that must be answered within it, so a daemon that stopped answering is still noticed.
   */
  readonly responseMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 5_000, responseMs: 30_000 };

/** The longest a stream stays silent before the daemon is probed. */
const KEEPALIVE_MAX_MS = 10_000;

/**
 * `--timeout SECONDS` (GPUSHARE_TIMEOUT): the response timeout; 0 waits as long as it takes.
 * The connect timeout is the default's, or the response timeout when that is shorter.
 */
export function resolveTimeouts(seconds: string | undefined): Timeouts {
  if (seconds === undefined || seconds === '') return DEFAULT_TIMEOUTS;
  const n = Number(seconds);
  if (!/^\s*[0-9.]+\s*$/.test(seconds) || !Number.isFinite(n) || n > 86_400) {
    throw new GsError(ErrorCodes.invalidArgument, `--timeout (GPUSHARE_TIMEOUT) "${seconds}" is not a number of seconds from 0 (no limit) to 86400`);
  }
  const ms = Math.round(n * 1000);
  return { connectMs: ms === 0 ? DEFAULT_TIMEOUTS.connectMs : Math.min(ms, DEFAULT_TIMEOUTS.connectMs), responseMs: ms };
}

/** A request's own limits: `slow` for an operation that answers only when long work is done. */
export interface RequestOptions {
  readonly headers?: Readonly<Record<string, string>>;
  /** At least this long for the answer (suspend and resume move GPU memory first); 0 in Timeouts stays no limit. */
  readonly atLeastMs?: number;
}

export class Client {
  constructor(
    readonly target: Target,
    readonly timeouts: Timeouts = DEFAULT_TIMEOUTS,
  ) {}

  /** The daemon's address as --host names it, for messages. */
  get where(): string {
    return this.target.kind === 'unix' ? this.target.path : this.target.url.origin;
  }

  async json<T>(method: string, path: string, body?: unknown, headers: Readonly<Record<string, string>> = {}, options: RequestOptions = {}): Promise<T> {
    return (await this.exchange<T>(method, path, body, headers, options)).body;
  }

  /** The answer with its headers (a list's next-page cursor, an idempotent replay's status). */
  async exchange<T>(method: string, path: string, body?: unknown, headers: Readonly<Record<string, string>> = {}, options: RequestOptions = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: T }> {
    const { responseMs } = this.timeouts;
    const limit = responseMs === 0 ? 0 : Math.max(responseMs, options.atLeastMs ?? 0);
    const res = await this.send(method, path, body, 'application/json', headers, limit, 'body');
    const text = await readAll(res);
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new GsError(ErrorCodes.internal, `the daemon answered HTTP ${res.statusCode} with a body that is not JSON`);
    }
    if ((res.statusCode ?? 500) >= 400) throw fromErrorBody(res.statusCode ?? 500, parsed);
    return { status: res.statusCode ?? 200, headers: res.headers, body: parsed as T };
  }

  /**
   * Calls `onLine` with each line of an NDJSON response until the daemon ends it. While the
   * stream is silent, `keepalive` (a cheap GET) is asked every so often (Timeouts): a daemon
   * that does not answer it ends the stream with GS_ERR_DAEMON_UNREACHABLE.
   */
  async lines(path: string, onLine: (value: unknown) => void, keepalive = '/v1/gpus'): Promise<void> {
    const res = await this.send('GET', path, undefined, 'application/x-ndjson', {}, this.timeouts.responseMs, 'headers');
    if ((res.statusCode ?? 500) >= 400) {
      const text = await readAll(res);
      throw fromErrorBody(res.statusCode ?? 500, safeJson(text));
    }
    res.setEncoding('utf8');
    let rest = '';
    const watchdog = this.watch(res, keepalive);
    try {
      for await (const chunk of res as AsyncIterable<string>) {
        watchdog.heard();
        rest += chunk;
        let nl;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (line !== '') onLine(JSON.parse(line));
        }
      }
    } catch (cause) {
      if (isGsError(cause)) throw cause;
      // The daemon stopped mid-stream (restart, crash): what it was streaming goes on without us.
      throw new GsError(ErrorCodes.daemonUnreachable, `lost the connection to the daemon at ${this.where}`, { cause });
    } finally {
      watchdog.stop();
    }
  }

  /** The keepalive of a stream: after a silence, one probe at a time; no answer destroys the stream. */
  private watch(res: IncomingMessage, keepalive: string): { heard(): void; stop(): void } {
    const { responseMs } = this.timeouts;
    if (responseMs === 0) return { heard: () => undefined, stop: () => undefined };
    const silenceMs = Math.min(responseMs, KEEPALIVE_MAX_MS);
    let timer: NodeJS.Timeout | null = null;
    let stopped = false;
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = stopped ? null : setTimeout(probe, silenceMs);
    };
    const probe = (): void => {
      timer = null;
      this.send('GET', keepalive, undefined, 'application/json', {}, responseMs, 'body')
        .then(readAll)
        .then(arm, (err: unknown) => {
          // Any answer (a 404 for a task removed meanwhile included) says the daemon is alive.
          if (stopped) return;
          if (isGsError(err) && err.code === ErrorCodes.daemonUnreachable) res.destroy(new GsError(err.code, `${err.message} (a keepalive while the stream was silent)`, { cause: err }));
          else arm();
        });
    };
    arm();
    return {
      heard: () => {
        if (timer) arm();
      },
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }

  /**
   * One request. The connect timeout runs until the socket is connected; `responseMs` (0: none)
   * until the answer's headers (`until: 'headers'`, a stream) or its whole body (`'body'`).
   */
  private send(method: string, path: string, body: unknown, accept: string, extra: Readonly<Record<string, string>>, responseMs: number, until: 'headers' | 'body'): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { ...extra, accept };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const t = this.target;
    if (t.kind === 'tcp' && t.token) headers['authorization'] = `Bearer ${t.token}`;
    return new Promise((resolve, reject) => {
      const options =
        t.kind === 'unix' ? { socketPath: t.path, path, method, headers } : { host: t.url.hostname.replace(/^\[|\]$/g, ''), port: t.url.port, path: `${t.url.pathname.replace(/\/$/, '')}${path}`, method, headers, ...t.tls };
      const where = this.where;
      let answer: NodeJS.Timeout | null = null;
      let response: IncomingMessage | null = null;
      const settle = (): void => {
        if (answer) clearTimeout(answer);
        answer = null;
      };
      const req = (t.kind === 'tcp' && t.url.protocol === 'https:' ? httpsRequest : httpRequest)(options, (res) => {
        response = res;
        if (until === 'headers') settle();
        else {
          res.once('end', settle);
          res.once('close', settle);
        }
        resolve(res);
      });
      const timedOut = (what: string, ms: number): GsError =>
        new GsError(ErrorCodes.daemonUnreachable, `the daemon at ${where} ${what} within ${ms / 1000} s (--timeout, GPUSHARE_TIMEOUT); is it stuck or overloaded?`, {
          cause: Object.assign(new Error(`timed out after ${ms} ms`), { code: 'ETIMEDOUT' }),
        });
      if (responseMs > 0) {
        answer = setTimeout(() => {
          const err = timedOut(`did not answer ${method} ${path.replace(/\?.*/, '')}`, responseMs);
          // Before the answer: the request fails with it; during the body: the body's reader does.
          if (response) response.destroy(err);
          req.destroy(err);
        }, responseMs);
      }
      req.on('socket', (socket) => {
        if (t.kind === 'tcp') socket.setKeepAlive(true, KEEPALIVE_MAX_MS);
        if (!socket.connecting) return;
        const ms = this.timeouts.connectMs;
        const connecting = setTimeout(() => req.destroy(timedOut('did not accept a connection', ms)), ms);
        socket.once(t.kind === 'tcp' && t.url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(connecting));
        socket.once('close', () => clearTimeout(connecting));
      });
      req.on('close', () => {
        if (!response) settle();
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        settle();
        if (isGsError(err)) reject(err);
        else if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTFOUND', 'EHOSTUNREACH'].includes(err.code ?? '')) {
          reject(new GsError(ErrorCodes.daemonUnreachable, `cannot reach a gpushare daemon at ${where} (${err.code}); start one with \`gpushare serve\`, or point --host / GPUSHARE_HOST at one`, { cause: err }));
        } else if (['EPIPE', 'ECONNRESET'].includes(err.code ?? '')) {
          // It accepted the connection, then went away: a daemon shutting down or crashing.
          reject(new GsError(ErrorCodes.daemonUnreachable, `the daemon at ${where} closed the connection (${err.code})`, { cause: err }));
        } else if (TLS_ERRORS.test(err.code ?? '')) {
          reject(new GsError(ErrorCodes.daemonUnreachable, `cannot verify the daemon at ${where}: its certificate is not trusted (${err.code}: ${err.message}); give the CA that signed it with --ca-file or GPUSHARE_CA_FILE`, { cause: err }));
        } else reject(err);
      });
      req.end(payload);
    });
  }
}

/** Node's codes for a server certificate it could not verify. */
const TLS_ERRORS = /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID|CERT_SIGNATURE_FAILURE)$/;

async function readAll(res: IncomingMessage): Promise<string> {
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res as AsyncIterable<string>) text += chunk;
  return text;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
