import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { HistoryResponseSchema } from '../../contract/history.js';
import { openBackend } from '../../gpu/open.js';
import { fleetSample } from '../../monitor/history/fixtures.js';
import { HistoryStore } from '../../monitor/history/store.js';
import { Daemon } from '../../node/daemon.js';
import { findNativePaths } from '../../node/launcher.js';
import { openDatabase } from '../../node/store/db.js';
import { TaskStore } from '../../node/store/tasks.js';
import { buildApi } from '../server.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const dir = mkdtempSync(join(tmpdir(), 'gpushare-history-api-'));
const { backend } = openBackend({ backend: 'simulated', simulate: '1xH100-80GB' });
const db = openDatabase(join(dir, 'db'));
const logger = pino({ level: 'silent' });
const daemon = new Daemon({ stateDir: dir, backend, store: new TaskStore(db), logger, native: findNativePaths(), policy: 'binpack', killGraceMs: 1000 });
daemon.start();
const history = new HistoryStore(':memory:');
const now = Date.now();
// The last 20 minutes at 1 s: 2 GPUs, 4 slices of tasks that are history only (tenant0, tenant1).
for (let t = now - 20 * 60_000; t <= now; t += 1000) history.record(fleetSample(t, 2, 4, 2, 1));
const user = { sha256: sha('t0-token'), tenant: 'tenant0', role: 'user' as const };
const admin = { sha256: sha('root-token'), tenant: 'ops', role: 'admin' as const };
const api = await buildApi({ daemon, logger, tokens: [user, admin], backend, history });
// No history store given: tests that build the API alone.
const bare = await buildApi({ daemon, logger, tokens: null, backend });

afterAll(async () => {
  for (const app of [api, bare]) await app.close();
  daemon.close();
  history.close();
  db.close();
  backend.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (query: string, token = 'root-token') => api.inject({ method: 'GET', url: `/v1/history?${query}`, headers: { authorization: `Bearer ${token}` } });
const task0 = fleetSample(0, 2, 4, 2).slices[0]!.task; // tenant0
const task1 = fleetSample(0, 2, 4, 2).slices[1]!.task; // tenant1

describe('GET /v1/history', () => {
  it('answers a GPU series over the last 10 minutes, raw, one point a second, in the contract shape', async () => {
    // In Unix ms, from the samples' own clock: a loaded machine may take seconds to get here.
    const r = await get(`series=gpu_utilization&gpu=1&since=${now - 600_000}&until=${now + 1}`);
    expect(r.statusCode).toBe(200);
    const body = HistoryResponseSchema.parse(r.json());
    expect(body).toMatchObject({ series: 'gpu_utilization', subject: { gpu: 1 }, step: 1, from: now - 600_000, to: now + 1 });
    expect(body.points).toHaveLength(601);
    expect(body.points.every((p) => p.min === p.mean && p.mean === p.max && p.t >= body.from - 1000 && p.t < body.to)).toBe(true);
  });

  it('aggregates a coarser step on read: min, mean and max per 5 minutes', async () => {
    const r = await get('series=queue_length&since=20m&step=5m');
    expect(r.statusCode).toBe(200);
    const body = HistoryResponseSchema.parse(r.json());
    expect(body.step).toBe(300);
    expect(body.points.length).toBeGreaterThanOrEqual(4);
    expect(body.points.length).toBeLessThanOrEqual(5);
    expect(body.points.every((p) => p.min === 1 && p.max === 1 && p.t % 300_000 === 0)).toBe(true);
  });

  it.each([
    ['an unknown series, naming those there are', 'series=gpu_fan', /not a history series; series are gpu_utilization, .*queue_length/],
    ['a GPU series given a task', `series=gpu_utilization&task=${task0}`, /series gpu_utilization takes gpu=<index>, not task/],
    ['a task series without one', 'series=slice_compute_share', /series slice_compute_share takes task=<id>/],
    ['the queue given a subject', 'series=queue_length&gpu=0', /series queue_length takes no subject, not gpu/],
    ['a since that is no time', 'series=queue_length&since=yesterday', /since: is neither a duration/],
    ['a step that is no step', 'series=queue_length&step=-5', /step: is neither a duration/],
    ['a range that ends before it starts', 'series=queue_length&since=5m&until=10m', /the range is empty/],
  ])('refuses %s with 400', async (_name, query, message) => {
    const r = await get(query);
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: 'GS_ERR_INVALID_ARGUMENT', message: expect.stringMatching(message) as unknown } });
  });

  it("shows a user its own tenant's task and tenant series, and GPUs fleet-wide; another tenant's read as not there", async () => {
    expect((await get(`series=slice_memory_used_bytes&task=${task0}&since=5m`, 't0-token')).statusCode).toBe(200);
    expect((await get('series=tenant_compute_share&tenant=tenant0&since=5m', 't0-token')).statusCode).toBe(200);
    expect((await get('series=gpu_power_watts&gpu=0&since=5m', 't0-token')).statusCode).toBe(200);
    const other = await get(`series=slice_memory_used_bytes&task=${task1}`, 't0-token');
    expect(other.statusCode).toBe(404);
    expect(other.json()).toMatchObject({ error: { code: 'GS_ERR_NOT_FOUND' } });
    expect((await get('series=tenant_memory_used_bytes&tenant=tenant1', 't0-token')).statusCode).toBe(404);
    // An admin sees every task's.
    expect((HistoryResponseSchema.parse((await get(`series=slice_memory_used_bytes&task=${task1}&since=1m`)).json())).points.length).toBeGreaterThan(50);
    // A task never seen is 404 for everyone.
    expect((await get('series=slice_memory_used_bytes&task=ffffffffffff')).statusCode).toBe(404);
  });

  it('answers 404 where the daemon keeps no history', async () => {
    const r = await bare.inject({ method: 'GET', url: '/v1/history?series=queue_length' });
    expect(r.statusCode).toBe(404);
  });
});
