/**
 * The daemon's HTTP API (fastify). One app per listener: the Unix socket trusts its peer (the
 * socket's directory is private to the daemon's user), a TCP listener requires a bearer token.
 */
import fastifySwagger from '@fastify/swagger';
import { createHash } from 'node:crypto';
import Fastify, { LogController, type FastifyRequest } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ErrorCodes, GsError } from '../domain/index.js';
import type { TokenEntry } from '../node/config.js';
import type { Daemon, Principal } from '../node/daemon.js';
import { LIVE_STATES } from '../node/task.js';
import { VERSION } from '../version.js';
import { toErrorResponse } from './errors.js';
import { eventStream, logStream } from './streams.js';
import {
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
} from './schemas.js';
import type { Task } from '../node/task.js';

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
  app.setSerializerCompiler(serializerCompiler);
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
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: ErrorCodes.notFound, message: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` } });
  });

  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  api.get('/v1/gpus', { schema: { summary: 'GPUs and the slices placed on them', response: { 200: GpusResponseSchema } } }, async () => ({
    backend: options.backend.kind,
    description: options.backend.description,
    gpus: daemon.gpus() as unknown as GpusResponse['gpus'],
  }));

  api.post('/v1/tasks', { schema: { summary: 'Submit a task', body: SubmitTaskSchema, response: { 201: TaskSchema, ...errors } } }, async (req, reply) => {
    const task = daemon.submit(req.body, req.principal);
    return reply.status(201).send(wire(task));
  });

  api.get('/v1/tasks', { schema: { summary: 'Queued and running tasks (all=1: finished ones too)', querystring: ListTasksQuerySchema, response: { 200: z.array(TaskSchema), ...errors } } }, async (req) =>
    daemon.list(req.query.all ?? false, req.principal).map(wire),
  );

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
    { schema: { summary: 'Cancel a queued task or signal a running one (SIGKILL after the grace period)', params: TaskIdParamsSchema, body: KillBodySchema.optional(), response: { 200: TaskSchema, ...errors } } },
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
      const stream = eventStream(daemon, req.query.since ?? 0);
      req.raw.on('close', () => stream.destroy());
      return reply.type('application/x-ndjson').send(stream as never);
    }
    return daemon.events(req.query.since ?? 0, req.query.limit ?? 1000);
  });

  return app;
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

/** A task as its wire type: the same shape (schemas.ts checks it at compile time), minus `readonly`. */
function wire(task: Task): TaskBody {
  return task as TaskBody;
}
