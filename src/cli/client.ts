/**
 * The CLI's way to the daemon: HTTP over the Unix socket (default) or TCP with a bearer token.
 * Errors come back as GsErrors with the daemon's codes, so exit statuses match local errors.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { ErrorCodes, GsError } from '../domain/index.js';
import { fromErrorBody } from '../contract/error-body.js';
import { clientSocketPath } from '../contract/paths.js';

export type Target = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly url: URL; readonly token: string | undefined; readonly tls?: TlsClient };

/** What an https:// client trusts and shows: a CA for the daemon's certificate, a certificate of its own for mutual TLS. */
export interface TlsClient {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/**
 * `--host`, else GPUSHARE_HOST, else this user's daemon's socket, or the system service's when
 * only that one is there (contract/paths.ts clientSocketPath). A path (or `unix:PATH`) is a socket;
 * `http(s)://` is TCP. For https: `caFile` (--ca-file, GPUSHARE_CA_FILE) is the CA the daemon's
 * certificate is checked against (else the system's); GPUSHARE_CLIENT_CERT and
 * GPUSHARE_CLIENT_KEY are this client's own, for a daemon that asks for one.
 */
export function resolveTarget(host: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env, caFile: string | undefined = env['GPUSHARE_CA_FILE']): Target {
  const value = host ?? env['GPUSHARE_HOST'] ?? clientSocketPath(env, userInfo().uid, existsSync);
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

export class Client {
  constructor(readonly target: Target) {}

  async json<T>(method: string, path: string, body?: unknown, headers: Readonly<Record<string, string>> = {}): Promise<T> {
    return (await this.exchange<T>(method, path, body, headers)).body;
  }

  /** The answer with its headers (a list's next-page cursor, an idempotent replay's status). */
  async exchange<T>(method: string, path: string, body?: unknown, headers: Readonly<Record<string, string>> = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: T }> {
    const res = await this.send(method, path, body, 'application/json', headers);
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

  /** Calls `onLine` with each line of an NDJSON response until the daemon ends it. */
  async lines(path: string, onLine: (value: unknown) => void): Promise<void> {
    const res = await this.send('GET', path, undefined, 'application/x-ndjson');
    if ((res.statusCode ?? 500) >= 400) {
      const text = await readAll(res);
      throw fromErrorBody(res.statusCode ?? 500, safeJson(text));
    }
    res.setEncoding('utf8');
    let rest = '';
    try {
      for await (const chunk of res as AsyncIterable<string>) {
        rest += chunk;
        let nl;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (line !== '') onLine(JSON.parse(line));
        }
      }
    } catch (cause) {
      // The daemon stopped mid-stream (restart, crash): what it was streaming goes on without us.
      throw new GsError(ErrorCodes.daemonUnreachable, 'lost the connection to the daemon', { cause });
    }
  }

  private send(method: string, path: string, body: unknown, accept: string, extra: Readonly<Record<string, string>> = {}): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { ...extra, accept };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const t = this.target;
    if (t.kind === 'tcp' && t.token) headers['authorization'] = `Bearer ${t.token}`;
    return new Promise((resolve, reject) => {
      const options =
        t.kind === 'unix' ? { socketPath: t.path, path, method, headers } : { host: t.url.hostname.replace(/^\[|\]$/g, ''), port: t.url.port, path: `${t.url.pathname.replace(/\/$/, '')}${path}`, method, headers, ...t.tls };
      const req = (t.kind === 'tcp' && t.url.protocol === 'https:' ? httpsRequest : httpRequest)(options, resolve);
      req.on('error', (err: NodeJS.ErrnoException) => {
        const where = t.kind === 'unix' ? t.path : t.url.origin;
        if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTFOUND', 'EHOSTUNREACH'].includes(err.code ?? '')) {
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
