/**
 * The daemon's HTTP API (fastify). One app per listener: the Unix socket trusts its peer (the
 * socket's directory is private to the daemon's user), a TCP listener requires a bearer token.
 */
import fastifySwagger from '@fastify/swagger';
import { createHash } from 'node:crypto';
import Fastify, { LogController, type FastifyRequest } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ErrorCodes, GsError } from '../domain/index.js';
import type { TokenEntry } from '../node/config.js';
import type { Daemon } from '../node/daemon.js';
import type { Principal } from '../contract/principal.js';
import { LIVE_STATES } from '../contract/task.js';
import { VERSION } from '../version.js';
import { toErrorResponse } from './errors.js';
import { eventStream, logStream } from './streams.js';
import {
  AuditQuerySchema,
  AuditRecordSchema,
  CreateTenantSchema,
  TenantNameParamsSchema,
  TenantSchema,
  UpdateTenantSchema,
  ErrorBodySchema,
  EventSchema,
  EventsQuerySchema,
  GpusResponseSchema,
  KillBodySchema,
  ListTasksQuerySchema,
  LogsQuerySchema,
  SubmitTaskSchema,
  TaskIdParamsSchema,
  TaskSchema,
  type GpusResponse,
  type TaskBody,
  type TenantBody,
} from '../contract/schemas.js';
import type { Task } from '../contract/task.js';

export interface ApiOptions {
  readonly daemon: Daemon;
  readonly logger: Logger;
  /** null: a Unix socket (every caller is the local admin); a list: TCP, bearer tokens required. */
  readonly tokens: readonly TokenEntry[] | null;
  readonly backend: { readonly kind: 'nvml' | 'simulated'; readonly description: string };
}

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 422: ErrorBodySchema };
const checkpointErrors = { ...errors, 503: ErrorBodySchema };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** The audit action of a route that changes something; its refusals are audited too. */
    action?: string;
  }
}

export type ApiApp = Awaited<ReturnType<typeof buildApi>>;

export async function buildApi(options: ApiOptions) {
  const { daemon } = options;
  const app = Fastify({ loggerInstance: options.logger.child({ component: 'api' }), logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4 * 1024 * 1024,
    // Followers (logs -f, events) never end by themselves; closing the daemon must not wait for them.
    forceCloseConnections: true,
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
  app.addHook('onRequest', async (req) => {
    req.principal = options.tokens === null ? local : authenticate(req, options.tokens);
  });

  app.setErrorHandler((err, req, reply) => {
    const { status, body, bug } = toErrorResponse(err);
    if (bug) req.log.error({ err }, 'request failed');
    const action = req.routeOptions.config.action;
    // Unauthenticated callers are not audited: anyone could fill the log.
    if (action !== undefined && (req.principal as Principal | null) !== null) {
      const params = req.params as { id?: string; name?: string } | undefined;
      const target = params?.id ?? params?.name ?? (action === 'tenant.create' ? ((req.body as { name?: unknown } | undefined)?.name as string | undefined) : undefined) ?? null;
      try {
        daemon.recordRefusal(req.principal, { action, target: typeof target === 'string' ? target.slice(0, 64) : null, detail: { status }, result: body.error.code, message: body.error.message.slice(0, 1000) });
      } catch (auditErr) {
        req.log.error({ err: auditErr }, 'could not audit a refused request');
      }
    }
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: ErrorCodes.notFound, message: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` } });
  });

  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  api.get('/v1/gpus', { schema: { summary: 'GPUs and the slices placed on them', response: { 200: GpusResponseSchema } } }, async (req) => ({
    backend: options.backend.kind,
    description: options.backend.description,
    gpus: daemon.gpus(req.principal) as unknown as GpusResponse['gpus'],
  }));

  api.post('/v1/tasks', { config: { action: 'task.submit' }, schema: { summary: 'Submit a task', body: SubmitTaskSchema, response: { 201: TaskSchema, ...errors } } }, async (req, reply) => {
    const task = daemon.submit(req.body, req.principal);
    return reply.status(201).send(wire(task));
  });

  // ps and top poll this: the live list's JSON is kept per viewer until a task changes.
  const liveJson = new Map<string, { version: number; json: RawJson }>();
  api.get('/v1/tasks', { schema: { summary: 'Queued and running tasks (all=1: finished ones too)', querystring: ListTasksQuerySchema, response: { 200: z.array(TaskSchema), ...errors } } }, async (req) => {
    if (req.query.all) return daemon.list(true, req.principal).map(wire);
    const viewer = req.principal.role === 'admin' ? '*admin' : `tenant:${req.principal.tenant}`;
    const version = daemon.liveVersion();
    const cached = liveJson.get(viewer);
    if (cached?.version === version) return cached.json as never;
    const json = new RawJson(JSON.stringify(daemon.list(false, req.principal).map(wire)));
    liveJson.set(viewer, { version, json });
    return json as never;
  });

  api.get('/v1/tasks/:id', { schema: { summary: 'One task (id or unique prefix)', params: TaskIdParamsSchema, response: { 200: TaskSchema, ...errors } } }, async (req) =>
    wire(daemon.get(req.params.id, req.principal)),
  );

  api.get(
    '/v1/tasks/:id/logs',
    {
      schema: {
        summary: "A task's output: text, or NDJSON {stream, data} with Accept: application/x-ndjson; follow=1 streams until the task ends",
        params: TaskIdParamsSchema,
        querystring: LogsQuerySchema,
        response: errors,
      },
    },
    async (req, reply) => {
      const task = daemon.get(req.params.id, req.principal);
      const which = req.query.stream ?? 'both';
      const sources = [
        ...(which !== 'stderr' ? [{ name: 'stdout' as const, path: task.stdoutPath }] : []),
        ...(which !== 'stdout' ? [{ name: 'stderr' as const, path: task.stderrPath }] : []),
      ];
      const ndjson = (req.headers.accept ?? '').includes('application/x-ndjson');
      const stream = logStream(sources, ndjson ? 'ndjson' : 'text', req.query.follow ?? false, () => !LIVE_STATES.has(daemon.get(task.id, req.principal).state));
      req.raw.on('close', () => stream.destroy());
      return reply.type(ndjson ? 'application/x-ndjson' : 'text/plain; charset=utf-8').send(stream as never);
    },
  );

  api.post(
    '/v1/tasks/:id/kill',
    { config: { action: 'task.kill' }, schema: { summary: 'Cancel a queued task or signal a running one (SIGKILL after the grace period)', params: TaskIdParamsSchema, body: KillBodySchema.optional(), response: { 200: TaskSchema, ...errors } } },
    async (req) => wire(daemon.kill(req.params.id, req.principal, { signal: req.body?.signal, graceMs: req.body?.graceSeconds === undefined ? undefined : req.body.graceSeconds * 1000 })),
  );

  api.post(
    '/v1/tasks/:id/suspend',
    {
      schema: {
        summary: "Suspend a running task: its GPU memory moves to host memory (CUDA checkpoint) and its processes stop; answers once it is suspended",
        params: TaskIdParamsSchema,
        response: { 200: TaskSchema, ...checkpointErrors },
      },
    },
    async (req) => wire(await daemon.suspend(req.params.id, req.principal)),
  );

  api.post(
    '/v1/tasks/:id/resume',
    {
      schema: {
        summary: 'Resume a suspended task on its GPUs or others of the same model; without room now it stays suspended (autoResume) and resumes when room returns',
        params: TaskIdParamsSchema,
        response: { 200: TaskSchema, ...checkpointErrors },
      },
    },
    async (req) => wire(await daemon.resume(req.params.id, req.principal)),
  );

  api.get('/v1/events', { schema: { summary: 'Task events after `since`; follow=1 streams them as NDJSON', querystring: EventsQuerySchema, response: { 200: z.array(EventSchema), ...errors } } }, async (req, reply) => {
    if (req.query.follow) {
      const stream = eventStream(daemon, req.query.since ?? 0, req.principal);
      req.raw.on('close', () => stream.destroy());
      return reply.type('application/x-ndjson').send(stream as never);
    }
    return daemon.events(req.query.since ?? 0, req.query.limit ?? 1000, req.principal);
  });

  const tenantsSummary = 'Tenants with their quotas and what their running tasks hold (a user sees its own tenant only)';
  api.get('/v1/tenants', { schema: { summary: tenantsSummary, response: { 200: z.array(TenantSchema), ...errors } } }, async (req) => daemon.tenants(req.principal) as TenantBody[]);

  api.get('/v1/tenants/:name', { schema: { summary: 'One tenant', params: TenantNameParamsSchema, response: { 200: TenantSchema, ...errors } } }, async (req) =>
    daemon.tenant(req.params.name, req.principal) as TenantBody,
  );

  api.post(
    '/v1/tenants',
    { config: { action: 'tenant.create' }, schema: { summary: 'Create a tenant, optionally with a quota (admin)', body: CreateTenantSchema, response: { 201: TenantSchema, ...errors } } },
    async (req, reply) => reply.status(201).send(daemon.createTenant(req.body.name, req.body.quota ?? {}, req.principal) as TenantBody),
  );

  api.patch(
    '/v1/tenants/:name',
    { config: { action: 'tenant.set-quota' }, schema: { summary: "Change a tenant's quota: null removes a limit, an absent field keeps it (admin)", params: TenantNameParamsSchema, body: UpdateTenantSchema, response: { 200: TenantSchema, ...errors } } },
    async (req) => daemon.setQuota(req.params.name, req.body.quota, req.principal) as TenantBody,
  );

  api.delete(
    '/v1/tenants/:name',
    { config: { action: 'tenant.delete' }, schema: { summary: 'Delete a tenant and its quota; refused while it has live tasks (admin)', params: TenantNameParamsSchema, response: { 204: z.null(), ...errors } } },
    async (req, reply) => {
      daemon.deleteTenant(req.params.name, req.principal);
      return reply.status(204).send(null);
    },
  );

  api.get('/v1/audit', { schema: { summary: 'The audit log: every change and refused change, oldest first (admin)', querystring: AuditQuerySchema, response: { 200: z.array(AuditRecordSchema), ...errors } } }, async (req) =>
    daemon.auditLog(req.principal, req.query.since ?? 0, req.query.limit ?? 1000),
  );

  return app;
}

/** A response body already serialized (and shaped by its schema when it was made). */
class RawJson {
  constructor(readonly text: string) {}
}

function authenticate(req: FastifyRequest, tokens: readonly TokenEntry[]): Principal {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m || m[1] === undefined) throw new GsError(ErrorCodes.unauthenticated, 'this API needs "Authorization: Bearer <token>" on TCP');
  const digest = createHash('sha256').update(m[1]).digest('hex');
  const entry = tokens.find((t) => t.sha256 === digest);
  if (!entry) throw new GsError(ErrorCodes.unauthenticated, 'the bearer token is not known to this daemon');
  return { actor: `tenant:${entry.tenant}`, role: entry.role, tenant: entry.tenant };
}

/** A task as its wire type: the same shape (src/contract/schemas.ts checks it at compile time), minus `readonly`. */
function wire(task: Task): TaskBody {
  return task as TaskBody;
}
