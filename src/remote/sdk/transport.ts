/**
 * How the SDK reaches a session's worker: a TCP connection to HOST:PORT with TCP_NODELAY and
 * keepalive, as the C client sets them (docs/remote.md "Link loss"). The one place a secured
 * transport goes: everything above it reads and writes a net.Socket.
 */
import { connect, type Socket } from 'node:net';
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

/** A connected socket, or the link error (refused, unreachable, not within `timeoutMs`). */
export function openSocket(endpoint: Endpoint, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: endpoint.host, port: endpoint.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(linkLost(`no connection to ${endpoint.host}:${endpoint.port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(linkLost(`cannot connect to ${endpoint.host}:${endpoint.port}: ${err.message}`, err));
    });
  });
}
