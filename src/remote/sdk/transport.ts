/**
 * How the SDK reaches a session's worker: a TCP connection to HOST:PORT with TCP_NODELAY and
 * keepalive, as the C client sets them (docs/remote.md "Link loss"), and, for a session with
 * TLS, TLS 1.3 with the worker's certificate pinned by its SHA-256 (docs/remote.md "TLS"):
 * checked before the first byte of a frame is written, so the key never reaches a server that
 * does not hold the worker's private key. Everything above reads and writes a net.Socket.
 */
import { timingSafeEqual } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { badArgument, linkLost } from './errors.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** "HOST:PORT" or "[V6]:PORT" as the daemon answers it; the argument error for anything else. */
export function parseEndpoint(text: string): Endpoint {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port <= 65535)) throw badArgument(`remote endpoint "${text.slice(0, 200)}": expected HOST:PORT (IPv6 as [ADDR]:PORT)`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Keepalive's first probe after this long idle (the worker's is 5 s too). */
const KEEPALIVE_MS = 5_000;

/**
 * A certificate pin as the daemon answers it (64 hex digits; colons and upper case accepted, as
 * the client library takes GPUSHARE_REMOTE_TLS_SHA256): the 32 bytes, or the argument error.
 */
export function parsePin(text: string): Buffer {
  const hex = text.replaceAll(':', '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw badArgument("tlsSha256: the worker certificate's SHA-256, 64 hex digits (colons allowed)");
  return Buffer.from(hex, 'hex');
}

/** Whether the certificate the worker presented is the pinned one (constant-time compare). */
function pinned(socket: ReturnType<typeof tlsConnect>, pin: Buffer): boolean {
  const fp = socket.getPeerX509Certificate()?.fingerprint256.replaceAll(':', '');
  if (fp === undefined || fp.length !== 64) return false;
  return timingSafeEqual(Buffer.from(fp, 'hex'), pin);
}

/**
 * A connected socket (with `pin`: TLS 1.3 done and the worker's certificate checked against it),
 * or the link error: refused, unreachable, not within `timeoutMs`, a failed TLS handshake, a
 * certificate that is not the pinned one (details.reason 'tlsPin'). No fallback to plaintext.
 */
export function openSocket(endpoint: Endpoint, timeoutMs: number, pin?: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const where = `${endpoint.host}:${endpoint.port}`;
    const options = { host: endpoint.host, port: endpoint.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS };
    const socket =
      pin === undefined
        ? connect(options)
        : // No CA, name or date check: the pin replaces them all (docs/remote.md "TLS").
          tlsConnect({ ...options, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', rejectUnauthorized: false });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(linkLost(`no connection${pin ? ' (TLS)' : ''} to ${where} within ${timeoutMs} ms`));
    }, timeoutMs);
    const ready = (): void => {
      clearTimeout(timer);
      if (pin !== undefined && !pinned(socket as ReturnType<typeof tlsConnect>, pin)) {
        socket.destroy();
        reject(new GsError(ErrorCodes.remoteLinkLost, `remote session: TLS: the worker's certificate at ${where} is not the pinned one`, { details: { reason: 'tlsPin' } }));
        return;
      }
      socket.removeAllListeners('error');
      resolve(socket);
    };
    socket.once(pin === undefined ? 'connect' : 'secureConnect', ready);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(linkLost(`cannot connect${pin ? ' (TLS)' : ''} to ${where}: ${err.message}`, err));
    });
  });
}
