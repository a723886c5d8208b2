/** /v1/remote/sessions: remote GPU sessions the daemon opens (src/remote/sessions.ts, docs/remote.md). */
import { OpenRemoteSessionSchema, RemoteSessionSchema } from '../../contract/remote.js';
import { RemoteSessions } from '../../remote/sessions.js';
import { askedPriority, checkSubmitPriority, checkSubmitTenant, taskView } from '../authorize.js';
import { errors, taskLookups, wire, type Api, type RouteContext } from './shared.js';

/** host:port the client reaches the worker at: the host this request came to (loopback over a Unix socket). */
function endpointHost(hostname: string | undefined, unix: boolean): string {
  if (unix || hostname === undefined || hostname === '' || hostname === 'localhost') return '127.0.0.1';
  return hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
}

export function registerRemoteRoutes(api: Api, { daemon }: RouteContext): void {
  const sessions = new RemoteSessions(daemon);
  api.addHook('onClose', async () => sessions.close());
  const { tenantOf } = taskLookups(daemon);
  api.post(
    '/v1/remote/sessions',
    {
      config: { action: 'remote.session.open' },
      schema: {
        summary: "Open a remote GPU session: a task of the caller's tenant running this daemon's worker on one GPU with the slice asked for; answers its port, a one-time key (never stored in the task) and, for a TLS session, the pin of its worker's certificate",
        body: OpenRemoteSessionSchema,
        response: { 201: RemoteSessionSchema, 202: RemoteSessionSchema, ...errors },
      },
    },
    async (req, reply) => {
      checkSubmitTenant(req.principal, req.body.tenant);
      checkSubmitPriority(req.principal, askedPriority(req.body.priority));
      // The data path is protected as the request that opened it was (docs/remote.md "TLS").
      const overTls = 'encrypted' in req.socket && req.socket.encrypted === true;
      const opened = await sessions.open(req.body, req.principal, overTls);
      daemon.recordRefusal(req.principal, { action: 'remote.session.open', target: opened.task.id, detail: { request: req.body, port: opened.port }, result: 'ok', message: null });
      const host = endpointHost(req.hostname, req.socket.remoteAddress === undefined);
      return reply.status(opened.port === null ? 202 : 201).send({
        task: wire(taskView(req.principal, opened.task, tenantOf)),
        port: opened.port,
        endpoint: opened.port === null ? null : `${host}:${opened.port}`,
        key: opened.key,
        tls: opened.tls,
      });
    },
  );
}
