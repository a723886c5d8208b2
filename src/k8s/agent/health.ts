/**
 * The agent's probe endpoint for the DaemonSet: `GET /healthz` (liveness: the event loop
 * answers) and `GET /readyz` (readiness: 200 once every part started and nothing is failing;
 * 503 with the parts that are not, as JSON). HTTP on host:port, or on a Unix socket (an exec or
 * a sidecar probe reads it).
 */
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HealthListen } from './config.js';

/** What is not ready, part by part (an empty list: ready). */
export type ReadinessCheck = () => readonly { readonly part: string; readonly reason: string }[];

/** A running endpoint of the agent (HealthServer names the probes' one). */
export interface HealthServer {
  /** `host:port` as bound (port 0 resolved), or the socket path. */
  readonly address: string;
  close(): Promise<void>;
}

export async function startHealthServer(listen: HealthListen, ready: ReadinessCheck): Promise<HealthServer> {
  return startHttpEndpoint(listen, 'the health endpoint', (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}\n');
      return;
    }
    if (path === '/readyz') {
      const notReady = ready();
      res.writeHead(notReady.length === 0 ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ ok: notReady.length === 0, notReady })}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found: /healthz and /readyz are served"}\n');
  });
}

/** An HTTP endpoint of the agent (probes, /metrics) on host:port or a Unix socket; `what` names it in a failure to listen. */
export async function startHttpEndpoint(listen: HealthListen, what: string, handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<HealthServer> {
  const server: Server = createServer(handle);
  if (listen.kind === 'unix') rmSync(listen.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`${what} cannot listen on ${listen.kind === 'unix' ? listen.path : `${listen.host}:${listen.port}`}: ${e.message}`)));
    if (listen.kind === 'unix') server.listen(listen.path, resolve);
    else server.listen(listen.port, listen.host, resolve);
  });
  if (listen.kind === 'unix') chmodSync(listen.path, 0o660);
  const bound = server.address();
  const address = typeof bound === 'string' ? bound : `${(bound as AddressInfo).address}:${(bound as AddressInfo).port}`;
  return {
    address,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (listen.kind === 'unix') rmSync(listen.path, { force: true });
    },
  };
}
