/** /v1/tasks: submit, list, inspect, follow the output of, kill, suspend, resume and remove tasks. */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Principal } from '../../contract/principal.js';
import { NEXT_CURSOR_HEADER, TASK_LIST_DEFAULT_LIMIT } from '../../contract/pages.js';
import { KillBodySchema, ListTasksQuerySchema, LogsQuerySchema, MoveBodySchema, PruneBodySchema, PruneResponseSchema, RemovedTaskSchema, SubmitTaskSchema, TaskIdParamsSchema, TaskSchema, type TaskBody } from '../../contract/schemas.js';
import { shown } from '../../contract/shown.js';
import { LIVE_STATES, type Task } from '../../contract/task.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { askedPriority, checkSubmitPriority, checkSubmitTenant, taskScope, taskView, viewerKey, visibleTask, visibleTasks } from '../authorize.js';
import { tailOffset } from '../log-tail.js';
import { logStream } from '../streams.js';
import { checkpointErrors, errors, RawJson, wire, type Api, type RouteContext } from './shared.js';

/** The Idempotency-Key header: null when absent; 1-200 visible ASCII characters (a UUID is usual). */
function idempotencyKey(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  if (typeof header !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(header)) {
    throw new GsError(ErrorCodes.invalidArgument, 'Idempotency-Key: expected one value of 1-200 visible ASCII characters (a UUID, say)');
  }
  return header;
}

/** JSON with object keys sorted: the same body hashes the same whatever order its fields came in. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));
}

/** `url` with its cursor replaced by `cursor`: the next page's address, for the Link header. */
function nextUrl(url: string, cursor: string): string {
  const [path, query = ''] = url.split('?');
  const params = new URLSearchParams(query);
  params.set('cursor', cursor);
  return `${path}?${params.toString()}`;
}

export function registerTaskRoutes(api: Api, { daemon }: RouteContext): void {
  /** The task `id` names, if the caller may see it (404 otherwise, as for one that does not exist). */
  const find = (id: string, principal: Principal): Task => visibleTask(principal, daemon.get(id, taskScope(principal)), id);
  /** A task's tenant by id; undefined once it is gone. */
  const tenantOf = (id: string): string | null | undefined => {
    try {
      return daemon.get(id).tenant;
    } catch {
      return undefined;
    }
  };
  /** A task the caller may see, on the wire as the caller may see it (authorize.ts taskView). */
  const view = (task: Task, principal: Principal, tenants: (id: string) => string | null | undefined = tenantOf): TaskBody => wire(taskView(principal, task, tenants));
  /** The tasks the caller may see, as they may see them; `tasks` is everything listed, so it names the tenants. */
  const views = (tasks: Task[], principal: Principal): TaskBody[] => {
    const visible = visibleTasks(principal, tasks);
    if (principal.role === 'admin') return visible.map(wire);
    const tenants = new Map(tasks.map((t) => [t.id, t.tenant]));
    return visible.map((t) => view(t, principal, (id) => (tenants.has(id) ? tenants.get(id) : tenantOf(id))));
  };

  api.post('/v1/tasks', { config: { action: 'task.submit' }, schema: { summary: 'Submit a task. With an Idempotency-Key header, a retry with the same key and body (same caller, within 24 h) answers 200 with the task the first made; the key with another body is 422 GS_ERR_IDEMPOTENCY_MISMATCH', body: SubmitTaskSchema, response: { 200: TaskSchema, 201: TaskSchema, ...errors } } }, async (req, reply) => {
    checkSubmitTenant(req.principal, req.body.tenant);
    checkSubmitPriority(req.principal, askedPriority(req.body.priority));
    const key = idempotencyKey(req.headers['idempotency-key']);
    // Without a key, stored in one commit with the others of this turn (Daemon.submitSoon); a keyed one alone, so a retry finds it.
    if (key === null) return reply.status(201).send(view(await daemon.submitSoon(req.body, req.principal), req.principal));
    // A retry of a submission this caller made: the same task again (200), not a second one.
    const bodySha256 = createHash('sha256').update(canonicalJson(req.body)).digest('hex');
    const prior = daemon.replay(req.principal, key, bodySha256);
    if (prior !== null) return reply.status(200).header('idempotent-replayed', 'true').send(view(prior, req.principal));
    return reply.status(201).send(view(daemon.submit(req.body, req.principal, { key, bodySha256 }), req.principal));
  });

  // ps and top poll this: the first page of the live list, unfiltered, is kept per viewer until a
  // task changes; and each task's JSON while its record is the same object (the daemon replaces
  // one only when it changes), so a change re-serializes the tasks it touched, not the whole page.
  const liveJson = new Map<string, { version: number; json: RawJson; next: string | null }>();
  const jsonOf = new WeakMap<TaskBody, string>();
  const taskJson = (t: TaskBody): string => {
    let text = jsonOf.get(t);
    if (text === undefined) {
      text = JSON.stringify(t);
      jsonOf.set(t, text);
    }
    return text;
  };
  api.get(
    '/v1/tasks',
    { schema: { summary: `Tasks in submission order, a page at a time (queued and running; all=1: finished ones too). The body is a JSON array; the ${NEXT_CURSOR_HEADER} header gives the cursor of the next page`, querystring: ListTasksQuerySchema, response: { 200: z.array(TaskSchema), ...errors } } },
    async (req, reply) => {
      const q = req.query;
      const principal = req.principal;
      if (q.tenant !== undefined && principal.role !== 'admin' && q.tenant !== principal.tenant) {
        throw new GsError(ErrorCodes.forbidden, `listing tenant "${shown(q.tenant, 64)}"'s tasks needs the admin role; a user token lists its own tenant's`);
      }
      const limit = q.limit ?? TASK_LIST_DEFAULT_LIMIT;
      const page = (tasks: Task[]): { tasks: Task[]; next: string | null } =>
        tasks.length > limit ? { tasks: tasks.slice(0, limit), next: String(tasks[limit - 1]?.seq) } : { tasks, next: null };
      const send = (json: RawJson, next: string | null): RawJson => {
        if (next !== null) void reply.header(NEXT_CURSOR_HEADER, next).header('link', `<${nextUrl(req.url, next)}>; rel="next"`);
        return json;
      };
      const plain = q.all === undefined && q.limit === undefined && q.cursor === undefined && q.state === undefined && q.tenant === undefined;
      const viewer = viewerKey(principal);
      const version = daemon.liveVersion();
      if (plain) {
        const cached = liveJson.get(viewer);
        if (cached?.version === version) return send(cached.json, cached.next) as never;
      }
      const tenant = principal.role === 'admin' ? q.tenant : (principal.tenant ?? '');
      const states = q.state?.split(',');
      const after = q.cursor === undefined ? 0 : Number(q.cursor);
      let found: { tasks: Task[]; next: string | null };
      if (q.all || states !== undefined) {
        found = page(daemon.page({ after, limit: limit + 1, tenant, states }));
      } else {
        // The live list is in memory already: filtered here, no query.
        found = page(daemon.list(false).filter((t) => t.seq > after && (tenant === undefined || t.tenant === tenant)).slice(0, limit + 1));
      }
      const json = new RawJson(`[${views(found.tasks, principal).map(taskJson).join(',')}]`);
      if (plain) liveJson.set(viewer, { version, json, next: found.next });
      return send(json, found.next) as never;
    },
  );

  api.get('/v1/tasks/:id', { schema: { summary: 'One task (id or unique prefix)', params: TaskIdParamsSchema, response: { 200: TaskSchema, ...errors } } }, async (req) =>
    view(find(req.params.id, req.principal), req.principal),
  );

  api.get(
    '/v1/tasks/:id/logs',
    {
      schema: {
        summary: "A task's output: text, or NDJSON {stream, data} with Accept: application/x-ndjson; follow=1 streams until the task ends; tail=N starts at each stream's last N lines",
        params: TaskIdParamsSchema,
        querystring: LogsQuerySchema,
        response: errors,
      },
    },
    async (req, reply) => {
      const task = find(req.params.id, req.principal);
      const which = req.query.stream ?? 'both';
      const tail = req.query.tail;
      const from = async (path: string): Promise<number> => (tail === undefined ? 0 : tailOffset(path, tail));
      const sources = [
        ...(which !== 'stderr' ? [{ name: 'stdout' as const, path: task.stdoutPath, offset: await from(task.stdoutPath) }] : []),
        ...(which !== 'stdout' ? [{ name: 'stderr' as const, path: task.stderrPath, offset: await from(task.stderrPath) }] : []),
      ];
      const ndjson = (req.headers.accept ?? '').includes('application/x-ndjson');
      const stream = logStream(sources, ndjson ? 'ndjson' : 'text', req.query.follow ?? false, () => !LIVE_STATES.has(daemon.get(task.id).state));
      req.raw.on('close', () => stream.destroy());
      return reply.type(ndjson ? 'application/x-ndjson' : 'text/plain; charset=utf-8').send(stream as never);
    },
  );

  api.post(
    '/v1/tasks/:id/kill',
    { config: { action: 'task.kill' }, schema: { summary: 'Cancel a queued task or signal a running one (SIGKILL after the grace period)', params: TaskIdParamsSchema, body: KillBodySchema.nullish(), response: { 200: TaskSchema, ...errors } } },
    async (req) => {
      const task = find(req.params.id, req.principal);
      return view(daemon.kill(task.id, req.principal, { signal: req.body?.signal, graceMs: req.body?.graceSeconds === undefined ? undefined : req.body.graceSeconds * 1000 }), req.principal);
    },
  );

  api.delete(
    '/v1/tasks/:id',
    { config: { action: 'task.remove' }, schema: { summary: 'Remove a finished task: its record, logs and state directory (a live one is refused: 409 GS_ERR_CONFLICT; kill it first)', params: TaskIdParamsSchema, response: { 200: RemovedTaskSchema, ...errors } } },
    async (req) => daemon.remove(find(req.params.id, req.principal).id, req.principal),
  );

  api.post(
    '/v1/tasks/prune',
    { config: { action: 'task.prune' }, schema: { summary: "Remove the finished tasks that ended before `before` (all finished ones without it): the caller's tenant's for a user token, everyone's for an admin", body: PruneBodySchema.nullish(), response: { 200: PruneResponseSchema, ...errors } } },
    async (req) => {
      const dryRun = req.body?.dryRun ?? false;
      const removed = daemon.prune(req.body?.before ?? Number.MAX_SAFE_INTEGER, req.principal, { tenant: taskScope(req.principal), dryRun });
      return { removed, freedBytes: removed.reduce((sum, r) => sum + r.freedBytes, 0), dryRun };
    },
  );

  // Suspend and resume answer once the checkpoint operation is done (or failed: 503).
  const checkpointRoute = (verb: 'suspend' | 'resume', summary: string, act: (id: string, principal: Principal) => Promise<Task>): void => {
    api.post(`/v1/tasks/:id/${verb}`, { config: { action: `task.${verb}` }, schema: { summary, params: TaskIdParamsSchema, response: { 200: TaskSchema, ...checkpointErrors } } }, async (req) =>
      view(await act(find(req.params.id, req.principal).id, req.principal), req.principal),
    );
  };
  checkpointRoute('suspend', 'Suspend a running task: its GPU memory moves to host memory (CUDA checkpoint) and its processes stop; answers once it is suspended', (id, p) => daemon.suspend(id, p));
  checkpointRoute('resume', 'Resume a suspended task on its GPUs or others of the same model; without room now it stays suspended (autoResume) and resumes when room returns', (id, p) => daemon.resume(id, p));
  api.post(
    '/v1/tasks/:id/move',
    { config: { action: 'task.move' }, schema: { summary: 'Move a running or suspended task to other GPUs of the same model (slice swap for its memory, the checkpoint API for its contexts); answers once it runs there, or why not (nothing changed)', params: TaskIdParamsSchema, body: MoveBodySchema, response: { 200: TaskSchema, ...checkpointErrors } } },
    async (req) => view(await daemon.move(find(req.params.id, req.principal).id, req.body.gpus, req.principal), req.principal),
  );
}
