import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openBackend } from '../gpu/open.js';
import { Daemon } from '../node/daemon.js';
import { findNativePaths } from '../node/launcher.js';
import { openDatabase } from '../node/store/db.js';
import { TaskStore } from '../node/store/tasks.js';
import { buildApi } from './server.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const dir = mkdtempSync(join(tmpdir(), 'gpushare-api-'));
const { backend } = openBackend({ backend: 'simulated', simulate: '1xH100-80GB' });
const db = openDatabase(join(dir, 'db'));
const store = new TaskStore(db);
const logger = pino({ level: 'silent' });
const daemon = new Daemon({ stateDir: dir, backend, store, logger, native: findNativePaths(), policy: 'binpack', killGraceMs: 1000 });
daemon.start();
const tokens = [
  { sha256: sha('alice-token'), tenant: 'alice', role: 'user' as const },
  { sha256: sha('bob-token'), tenant: 'bob', role: 'user' as const },
  { sha256: sha('root-token'), tenant: 'ops', role: 'admin' as const },
];
const tcp = await buildApi({ daemon, logger, tokens, backend });
const local = await buildApi({ daemon, logger, tokens: null, backend });

afterAll(async () => {
  await tcp.close();
  await local.close();
  daemon.close();
  db.close();
  backend.close();
});

// A task that stays queued (whole GPU, behind an exclusive holder) would need a process; CPU-only `true` is enough here.
const submit = (token: string | null, body: Record<string, unknown> = {}) =>
  tcp.inject({ method: 'POST', url: '/v1/tasks', headers: token ? { authorization: `Bearer ${token}` } : {}, payload: { command: ['true'], gpus: 0, cwd: '/', ...body } });

describe('TCP API auth', () => {
  it.each([
    ['no token', null],
    ['an unknown token', 'nope'],
  ])('refuses %s with 401 and changes nothing', async (_name, token) => {
    const audits = store.auditCount();
    const r = await submit(token);
    expect(r.statusCode).toBe(401);
    expect(r.json()).toMatchObject({ error: { code: 'GS_ERR_UNAUTHENTICATED' } });
    expect(store.auditCount()).toBe(audits);
    expect(store.list(true)).toHaveLength(0);
  });

  it('maps a token to its tenant, audits the change, and keeps tenants apart', async () => {
    const audits = store.auditCount();
    const r = await submit('alice-token');
    expect(r.statusCode).toBe(201);
    const id = (r.json() as { id: string; tenant: string }).id;
    expect(r.json()).toMatchObject({ tenant: 'alice' });
    expect(store.auditCount()).toBe(audits + 1);

    const asBob = await tcp.inject({ method: 'GET', url: `/v1/tasks/${id}`, headers: { authorization: 'Bearer bob-token' } });
    expect(asBob.statusCode).toBe(404);
    const bobKill = await tcp.inject({ method: 'POST', url: `/v1/tasks/${id}/kill`, headers: { authorization: 'Bearer bob-token' }, payload: {} });
    expect(bobKill.statusCode).toBe(404);
    const forOther = await submit('bob-token', { tenant: 'alice' });
    expect(forOther.statusCode).toBe(403);
    expect(forOther.json()).toMatchObject({ error: { code: 'GS_ERR_FORBIDDEN' } });

    const asAdmin = await tcp.inject({ method: 'GET', url: '/v1/tasks?all=1', headers: { authorization: 'Bearer root-token' } });
    expect((asAdmin.json() as { id: string }[]).map((t) => t.id)).toContain(id);
    const onSocket = await local.inject({ method: 'GET', url: `/v1/tasks/${id}` });
    expect(onSocket.statusCode).toBe(200);
  });
});

describe('responses match their schemas', () => {
  // The API serializes with JSON.stringify (fast); this is where the shapes are checked at run time.
  it('tasks, GPUs, tenants, audit and events parse with the schemas the OpenAPI document gives', async () => {
    const { AuditRecordSchema, EventSchema, GpusResponseSchema, TaskSchema, TenantSchema } = await import('../contract/schemas.js');
    const created = await local.inject({ method: 'POST', url: '/v1/tenants', payload: { name: 'schema-check', quota: { gpus: 1, memory: '10Gi', compute: 50 } } });
    expect(created.statusCode).toBe(201);
    const submitted = await local.inject({ method: 'POST', url: '/v1/tasks', payload: { command: ['true'], gpus: 0, cwd: '/', tenant: 'schema-check' } });
    expect(submitted.statusCode).toBe(201);
    const strict = <T extends z.ZodType>(schema: T, value: unknown): void => {
      const parsed = schema.safeParse(value);
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
      // Nothing beyond the schema leaks out (the parsed value keeps only known keys, loose objects aside).
      expect(parsed.data).toEqual(value);
    };
    strict(TaskSchema, submitted.json());
    strict(z.array(TaskSchema), (await local.inject({ method: 'GET', url: '/v1/tasks?all=1' })).json());
    strict(GpusResponseSchema, (await local.inject({ method: 'GET', url: '/v1/gpus' })).json());
    strict(TenantSchema, created.json());
    strict(z.array(TenantSchema), (await local.inject({ method: 'GET', url: '/v1/tenants' })).json());
    strict(z.array(AuditRecordSchema), (await local.inject({ method: 'GET', url: '/v1/audit' })).json());
    strict(z.array(EventSchema), (await local.inject({ method: 'GET', url: '/v1/events' })).json());
  });
});
