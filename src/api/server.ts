/**
 * The daemon's HTTP API (fastify). One app per listener: the Unix socket trusts its peer (the
 * socket's directory is private to the daemon's user), a TCP listener requires a bearer token.
 * This file sets the app up (who asks, errors and their audit rows, serialization, OpenAPI);
 * the routes are in routes/, one module per resource, and what a caller may see or do is
 * decided in authorize.ts.
 */
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyReply, type FastifyRequest, type FastifyServerFactory, type RawServerDefault } from 'fastify';
import { createServer as createHttpsServer } from 'node:https';
import { jsonSchemaTransform, jsonSchemaTransformObject, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Principal } from '../contract/principal.js';
import { ErrorCodes, GsError } from '../domain/index.js';
import type { TokenEntry } from '../node/config.js';
import type { Daemon } from '../node/daemon.js';
import { TokenAuthority, type TokenChecker } from '../node/tokens.js';
import { FailedAuthLimiter, limitKey } from './auth-limit.js';
import { registerTokenRoutes } from './routes/tokens.js';
import { registerMetricsRoutes, type MetricsEndpoint } from './routes/metrics.js';
import type { SampleSource } from '../contract/monitor.js';
import type { AlertSource } from '../contract/alerts.js';
import type { HistorySource } from '../contract/history.js';
import { VERSION } from '../version.js';
import { refuseUnparsable, toErrorResponse } from './errors.js';
import { shown } from '../contract/shown.js';
import { registerAlertRoutes } from './routes/alerts.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerEventRoutes } from './routes/events.js';
import { registerGpuRoutes } from './routes/gpus.js';
import { registerHistoryRoutes } from './routes/history.js';
import { registerMonitorRoutes } from './routes/monitor.js';
import { registerRemoteRoutes } from './routes/remote.js';
import { RawJson } from './routes/shared.js';
import { registerTaskRoutes } from './routes/tasks.js';
import { registerTenantRoutes } from './routes/tenants.js';

export interface ApiOptions {
  readonly daemon: Daemon;
  readonly logger: Logger;
  /** null: a Unix socket (every caller is the local admin); a list or a token authority: TCP, bearer tokens required. */
  readonly tokens: readonly TokenEntry[] | TokenAuthority | null;
  /** Where tokens are made, listed and revoked (/v1/tokens); absent: the TCP authority, if any. */
  readonly tokenAdmin?: TokenAuthority | null;
  /** Failed authentications allowed per remote address and minute before it gets 429 (default 10). */
  readonly authFailuresPerMinute?: number;
  readonly backend: { readonly kind: 'nvml' | 'simulated'; readonly description: string };
  /** TLS for a TCP listener (PEM contents); with `ca`, a client certificate it signed is required too. */
  readonly https?: { readonly cert: Buffer; readonly key: Buffer; readonly ca?: Buffer | undefined } | null;
  /** The monitor's samples (metrics, history, alerts, dashboard read them); absent: none taken (tests). */
  readonly samples?: SampleSource | null;
  /** The history store GET /v1/history reads; absent: none kept (tests). */
  readonly history?: HistorySource | null;
  /** GET /metrics and the API latency it reports; absent: no /metrics (tests that build the API alone). */
  readonly metrics?: (MetricsEndpoint & { observeRequest(route: string, method: string, statusCode: number, seconds: number): void }) | null;
  /** The dashboard's built files; absent: dist/web. */
  readonly webRoot?: string | null;
  /** The daemon's alerts and silences (/v1/alerts, /v1/silences); absent: none kept (tests). */
  readonly alerts?: AlertSource | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** The audit action of a route that changes something; its refusals are audited too. */
    action?: string;
    /** Served without a token (the dashboard's static files: they hold no data). */
    public?: boolean;
  }
}

export type ApiApp = Awaited<ReturnType<typeof buildApi>>;

export async function buildApi(options: ApiOptions) {
  const { daemon } = options;
  const app = Fastify({ loggerInstance: options.logger.child({ component: 'api' }), logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4 * 1024 * 1024,
    // Followers (logs -f, events) never end by themselves; closing the daemon must not wait for them.
    forceCloseConnections: true,
    ...(options.https ? { serverFactory: httpsServer(options.https) } : {}),
    // Refusals before a route is found (a path parameter over 100 characters: 414, a URL that
    // does not decode: 400) and before HTTP parsing is done (431, 408, 400) use the API's error
    // body too, and never echo what was sent in full.
    frameworkErrors: (err, _req, reply) => {
      const { status, body } = toErrorResponse(err);
      void (reply as unknown as FastifyReply).status(status).send(body);
    },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => refuseUnparsable(err, socket),
  });
  // An empty body with Content-Type: application/json is no body (POST kill's is optional),
  // not a parse error; anything else is parsed as fastify does (prototype poisoning refused).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, text, done) => {
    const body = typeof text === 'string' ? text : text.toString('utf8');
    if (body.trim() === '') {
      done(null, undefined);
      return;
    }
    parseJson(req, body, done);
  });
  app.setValidatorCompiler(validatorCompiler);
  // Responses are typed against their schemas at compile time (src/contract/schemas.ts) and checked against
  // them in tests (server.test.ts); encoding every response through zod again at run time cost
  // about 1 ms per 20 tasks listed, most of the API's time at 1,000 requests/s (bench/api.bench.ts).
  app.setSerializerCompiler(() => (data) => (data instanceof RawJson ? data.text : JSON.stringify(data)));
  app.decorateRequest('principal', null as unknown as Principal);
  await app.register(fastifySwagger, {
    openapi: { info: { title: 'gpushare daemon API', version: VERSION }, components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });

  const local: Principal = { actor: `local:${process.getuid?.() ?? 'user'}`, role: 'admin', tenant: null };
  const checker = options.tokens === null ? null : Array.isArray(options.tokens) ? new TokenAuthority(options.tokens, null) : (options.tokens as TokenAuthority);
  const limiter = new FailedAuthLimiter({ limit: options.authFailuresPerMinute ?? 10, windowMs: 60_000 });
  app.addHook('onRequest', async (req, reply) => {
    if (checker === null) {
      req.principal = local;
      return;
    }
    // The dashboard's files: no data in them, and a browser cannot send a token for a page load.
    if (req.routeOptions.config.public === true) return;
    // Refused before the token is even looked at: a blocked address learns nothing more.
    const address = limitKey(req.socket.remoteAddress ?? 'unknown');
    const wait = limiter.retryAfter(address);
    if (wait > 0) {
      void reply.header('retry-after', String(wait));
      throw new GsError(ErrorCodes.rateLimited, `too many failed authentications from ${address}; try again in ${wait} s`);
    }
    const result = authenticate(req, checker);
    if (result.ok) {
      req.principal = result.principal;
      return;
    }
    if (limiter.fail(address)) {
      // Once per address and window: unauthenticated failures are otherwise not audited (anyone could fill the log).
      req.log.warn({ address }, 'too many failed authentications; refusing this address for a minute');
      try {
        daemon.recordRefusal({ actor: `address:${address}`, role: 'none' as Principal['role'] }, { action: 'auth', target: null, detail: { failures: options.authFailuresPerMinute ?? 10, windowSeconds: 60 }, result: ErrorCodes.rateLimited, message: 'too many failed authentications; refused for a minute' });
      } catch (auditErr) {
        req.log.error({ err: auditErr }, 'could not audit a blocked address');
      }
    }
    throw new GsError(ErrorCodes.unauthenticated, result.message);
  });

  const metrics = options.metrics ?? null;
  if (metrics !== null) {
    // By route pattern (never the raw URL: task ids would make a label value per task).
    app.addHook('onResponse', async (req, reply) => {
      metrics.observeRequest(req.routeOptions.url ?? 'unmatched', req.method, reply.statusCode, reply.elapsedTime / 1000);
    });
  }

  app.setErrorHandler((err, req, reply) => {
    const { status, body, bug } = toErrorResponse(err);
    if (bug) req.log.error({ err }, 'request failed');
    const action = req.routeOptions.config.action;
    // Unauthenticated callers are not audited: anyone could fill the log.
    if (action !== undefined && (req.principal as Principal | null) !== null) {
      const params = req.params as { id?: string; name?: string; gpu?: string } | undefined;
      const target = params?.id ?? params?.name ?? params?.gpu ?? (action === 'tenant.create' ? ((req.body as { name?: unknown } | undefined)?.name as string | undefined) : undefined) ?? null;
      try {
        daemon.recordRefusal(req.principal, { action, target: typeof target === 'string' ? target.slice(0, 64) : null, detail: { status }, result: body.error.code, message: body.error.message.slice(0, 1000) });
      } catch (auditErr) {
        req.log.error({ err: auditErr }, 'could not audit a refused request');
      }
    }
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: ErrorCodes.notFound, message: `no such endpoint: ${shown(req.method, 16)} ${shown(req.url.split('?')[0] ?? '')}` } });
  });

  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // Each resource's routes in its own module; each asks authorize.ts before it asks the daemon.
  const context = { daemon, backend: options.backend, tokens: options.tokenAdmin ?? (checker instanceof TokenAuthority ? checker : null), samples: options.samples ?? null, history: options.history ?? null, webRoot: options.webRoot ?? null, alerts: options.alerts ?? null };
  registerGpuRoutes(api, context);
  registerTaskRoutes(api, context);
  registerRemoteRoutes(api, context);
  registerEventRoutes(api, context);
  registerTenantRoutes(api, context);
  registerAuditRoutes(api, context);
  registerTokenRoutes(api, context);
  if (metrics !== null) registerMetricsRoutes(api, metrics);
  registerMonitorRoutes(api, context);
  registerDashboardRoutes(api, context);
  registerAlertRoutes(api, context);
  registerHistoryRoutes(api, context);

  return app;
}

/** An HTTPS server where fastify expects its HTTP one (the request handling is the same). */
function httpsServer(tls: NonNullable<ApiOptions['https']>): FastifyServerFactory {
  const mutual = tls.ca !== undefined ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {};
  return (handler) => createHttpsServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...mutual }, handler) as unknown as RawServerDefault;
}

const AUTH_REFUSALS = { unknown: 'the bearer token is not known to this daemon', expired: 'the bearer token has expired; ask an admin for a new one', revoked: 'the bearer token was revoked' } as const;

function authenticate(req: FastifyRequest, checker: TokenChecker): { ok: true; principal: Principal } | { ok: false; message: string } {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S{1,512})$/i.exec(header);
  if (!m || m[1] === undefined) return { ok: false, message: 'this API needs "Authorization: Bearer <token>" on TCP' };
  const result = checker.authenticate(m[1]);
  return result.ok ? result : { ok: false, message: AUTH_REFUSALS[result.reason] };
}
