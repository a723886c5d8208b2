/** DELETE /v1/tasks/:id and POST /v1/tasks/prune: finished tasks only, the caller's tenant's only, audited. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bearer as auth, errorOf, idOf, inProcessDaemon, TEST_TOKENS } from '../../../test/helpers/api.js';

const gs = inProcessDaemon();
const { daemon, store } = gs;
const tcp = await gs.api({ tokens: TEST_TOKENS });
afterAll(() => gs.close());

const submit = (token: string, body: Record<string, unknown> = {}) =>
  tcp.inject({ method: 'POST', url: '/v1/tasks', headers: auth(token), payload: { command: ['sleep', '60'], gpus: 0, cwd: '/', ...body } });
const exists = (id: string): boolean => store.list(true).some((t) => t.id === id);
const taskDir = (id: string): string => join(gs.dir, 'tasks', id);

/** A task of the token's tenant that has run, written its output, and exited. */
async function ended(token: string): Promise<string> {
  const id = idOf(await submit(token, { command: ['sh', '-c', 'echo hello; echo oops >&2'] }));
  for (let i = 0; i < 500 && ['queued', 'starting', 'running'].includes(daemon.get(id).state); i++) await new Promise((r) => setTimeout(r, 10));
  expect(daemon.get(id).state).toBe('exited');
  return id;
}

async function gone(dir: string): Promise<boolean> {
  for (let i = 0; i < 200 && existsSync(dir); i++) await new Promise((r) => setTimeout(r, 10));
  return !existsSync(dir);
}

describe('DELETE /v1/tasks/:id', () => {
  it('removes a finished task: its record, its logs and its directory; says what they held; audited', async () => {
    const id = await ended('alice-token');
    expect(existsSync(taskDir(id))).toBe(true);
    const before = store.auditCount();
    const r = await tcp.inject({ method: 'DELETE', url: `/v1/tasks/${id.slice(0, 8)}`, headers: auth('alice-token') });
    expect(r.statusCode).toBe(200);
    const body = r.json() as { id: string; freedBytes: number };
    expect(body.id).toBe(id);
    expect(body.freedBytes).toBeGreaterThanOrEqual('hello\noops\n'.length);
    expect(exists(id)).toBe(false);
    expect(await gone(taskDir(id))).toBe(true);
    expect((await tcp.inject({ method: 'GET', url: `/v1/tasks/${id}`, headers: auth('alice-token') })).statusCode).toBe(404);
    expect(daemon.auditLog(0, 100_000).slice(before).map((a) => [a.actor, a.action, a.target, a.result])).toEqual([[expect.stringMatching(/^tenant:alice\/token:[0-9a-f]{12}$/), 'task.remove', id, 'ok']]);
  });

  it('refuses a live task (409), which stays; the refusal is audited', async () => {
    const id = idOf(await submit('alice-token')); // sleep 60: live until killed
    const before = store.auditCount();
    const r = await tcp.inject({ method: 'DELETE', url: `/v1/tasks/${id}`, headers: auth('alice-token') });
    expect(r.statusCode).toBe(409);
    expect(errorOf(r).code).toBe('GS_ERR_CONFLICT');
    expect(errorOf(r).message).toMatch(new RegExp(`^task ${id} is (queued \\(not started yet\\)|starting|running); only a finished task can be removed \\(kill it first, or gpushare rm -f\\)$`));
    expect(exists(id)).toBe(true);
    expect(daemon.auditLog(0, 100_000).slice(before).map((a) => [a.action, a.target, a.result])).toEqual([['task.remove', id, 'GS_ERR_CONFLICT']]);
    daemon.kill(id, { actor: 'test', role: 'admin' });
  });

  it("another tenant's task is not there (404) and stays", async () => {
    const bobs = await ended('bob-token');
    const r = await tcp.inject({ method: 'DELETE', url: `/v1/tasks/${bobs}`, headers: auth('alice-token') });
    expect(r.statusCode).toBe(404);
    expect(exists(bobs)).toBe(true);
    expect(existsSync(taskDir(bobs))).toBe(true);
  });

  it('forgets the Idempotency-Key that made it: a retry with it makes a new task', async () => {
    const key = { ...auth('alice-token'), 'idempotency-key': 'rm-test-key' };
    const payload = { command: ['true'], gpus: 0, cwd: '/' };
    const first = idOf(await tcp.inject({ method: 'POST', url: '/v1/tasks', headers: key, payload }));
    for (let i = 0; i < 500 && daemon.get(first).state !== 'exited'; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await tcp.inject({ method: 'DELETE', url: `/v1/tasks/${first}`, headers: auth('alice-token') })).statusCode).toBe(200);
    const retry = await tcp.inject({ method: 'POST', url: '/v1/tasks', headers: key, payload });
    expect(retry.statusCode).toBe(201);
    expect(idOf(retry)).not.toBe(first);
  });
});

describe('POST /v1/tasks/prune', () => {
  it("a dry run names the caller's finished tasks and removes nothing; then they go, another tenant's and live ones stay", async () => {
    const mine = [await ended('alice-token'), await ended('alice-token')];
    const bobs = await ended('bob-token');
    const live = idOf(await submit('alice-token'));
    const dry = await tcp.inject({ method: 'POST', url: '/v1/tasks/prune', headers: auth('alice-token'), payload: { dryRun: true } });
    expect(dry.statusCode).toBe(200);
    const dryBody = dry.json() as { removed: { id: string }[]; dryRun: boolean };
    expect(dryBody.dryRun).toBe(true);
    expect(dryBody.removed.map((r) => r.id)).toEqual(expect.arrayContaining(mine));
    expect(dryBody.removed.map((r) => r.id)).not.toContain(bobs);
    expect(mine.every(exists)).toBe(true);

    const before = store.auditCount();
    const r = await tcp.inject({ method: 'POST', url: '/v1/tasks/prune', headers: auth('alice-token') });
    expect(r.statusCode).toBe(200);
    const body = r.json() as { removed: { id: string; freedBytes: number }[]; freedBytes: number };
    expect(body.removed.map((x) => x.id)).toEqual(dryBody.removed.map((x) => x.id));
    expect(body.freedBytes).toBe(body.removed.reduce((s, x) => s + x.freedBytes, 0));
    expect(mine.some(exists)).toBe(false);
    expect(exists(bobs)).toBe(true);
    expect(exists(live)).toBe(true);
    const audit = daemon.auditLog(0, 100_000).slice(before);
    expect(audit.map((a) => [a.actor, a.action, a.target, a.result])).toEqual([[expect.stringMatching(/^tenant:alice\/token:[0-9a-f]{12}$/), 'task.prune', 'alice', 'ok']]);
    expect(audit[0]?.detail['ids']).toEqual(body.removed.map((x) => x.id));
    daemon.kill(live, { actor: 'test', role: 'admin' });
  });

  it('takes only tasks that ended before `before`', async () => {
    const id = await ended('bob-token');
    const finishedAt = daemon.get(id).finishedAt ?? 0;
    const early = await tcp.inject({ method: 'POST', url: '/v1/tasks/prune', headers: auth('bob-token'), payload: { before: finishedAt } });
    expect((early.json() as { removed: { id: string }[] }).removed.map((r) => r.id)).not.toContain(id);
    expect(exists(id)).toBe(true);
    const later = await tcp.inject({ method: 'POST', url: '/v1/tasks/prune', headers: auth('bob-token'), payload: { before: finishedAt + 1 } });
    expect((later.json() as { removed: { id: string }[] }).removed.map((r) => r.id)).toContain(id);
    expect(exists(id)).toBe(false);
  });

  it('an admin prunes every tenant\'s; a bad body is refused', async () => {
    const a = await ended('alice-token');
    const b = await ended('bob-token');
    const r = await tcp.inject({ method: 'POST', url: '/v1/tasks/prune', headers: auth('root-token'), payload: {} });
    expect((r.json() as { removed: { id: string }[] }).removed.map((x) => x.id)).toEqual(expect.arrayContaining([a, b]));
    const bad = await tcp.inject({ method: 'POST', url: '/v1/tasks/prune', headers: auth('root-token'), payload: { before: 'yesterday' } });
    expect(bad.statusCode).toBe(400);
  });
});
