/** GET /v1/tasks a page at a time: a stable cursor by seq, filters by state and tenant, and clients that follow the pages. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/cli/client.js';
import { listTasks } from '../src/cli/commands/tasks-common.js';
import { NEXT_CURSOR_HEADER, TASK_LIST_DEFAULT_LIMIT } from '../src/contract/pages.js';
import type { TaskBody } from '../src/contract/schemas.js';
import { inProcessDaemon, TEST_TOKENS } from './helpers/api.js';

const gs = inProcessDaemon();
const { daemon, store } = gs;
const tcp = await gs.api({ tokens: TEST_TOKENS });
const local = await gs.api({ tokens: null });
const admin = { actor: 'test', role: 'admin' as const, tenant: null };

beforeAll(async () => {
  // One task holds the GPU; the rest wait behind it (no process each), alice's and bob's in turn.
  const holder = daemon.submit({ command: ['sleep', '60'], gpus: 1, isolation: 'exclusive', cwd: '/', tenant: 'ops' }, admin);
  for (let i = 0; i < TASK_LIST_DEFAULT_LIMIT + 20; i++) daemon.submit({ command: ['true'], gpus: 1, cwd: '/', tenant: i % 2 === 0 ? 'alice' : 'bob' }, admin);
  // Two that ended.
  for (const id of daemon.list(false).slice(1, 3).map((t) => t.id)) daemon.kill(id, admin);
  // The spawner starts it off the event loop: `running` once it answered.
  for (const deadline = Date.now() + 10_000; daemon.get(holder.id).state !== 'running' && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
});
afterAll(() => gs.close());

const list = (query: string, token?: string) => (token ? tcp : local).inject({ method: 'GET', url: `/v1/tasks${query}`, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
const ids = (r: { json: () => unknown }): string[] => (r.json() as TaskBody[]).map((t) => t.id);

describe('task list pages', () => {
  it('a page at a time, following the cursor: every task once, in submission order, the last page without a cursor', async () => {
    const all = store.list(true).map((t) => t.id);
    const seen: string[] = [];
    let query = '?all=1&limit=100';
    for (let pages = 0; pages < 20; pages++) {
      const r = await list(query);
      expect(r.statusCode).toBe(200);
      seen.push(...ids(r));
      const next = r.headers[NEXT_CURSOR_HEADER];
      if (next === undefined) break;
      expect(r.headers['link']).toBe(`</v1/tasks?all=1&limit=100&cursor=${next}>; rel="next"`);
      // A task submitted meanwhile comes at the end; nothing is seen twice or skipped.
      if (pages === 1) all.push(daemon.submit({ command: ['true'], gpus: 1, cwd: '/', tenant: 'bob' }, admin).id);
      query = `?all=1&limit=100&cursor=${String(next)}`;
    }
    expect(seen).toEqual(all);
  });

  it(`without a limit, at most ${TASK_LIST_DEFAULT_LIMIT}; the first page of the live list is as before for a list that fits`, async () => {
    const first = await list('');
    expect(ids(first)).toHaveLength(TASK_LIST_DEFAULT_LIMIT);
    expect(ids(first)).toEqual(daemon.list(false).slice(0, TASK_LIST_DEFAULT_LIMIT).map((t) => t.id));
    expect(first.headers[NEXT_CURSOR_HEADER]).toBe(String(daemon.list(false)[TASK_LIST_DEFAULT_LIMIT - 1]?.seq));
    // The cached answer carries its cursor too.
    expect((await list('')).headers[NEXT_CURSOR_HEADER]).toBe(first.headers[NEXT_CURSOR_HEADER]);
    const rest = await list(`?cursor=${String(first.headers[NEXT_CURSOR_HEADER])}`);
    expect([...ids(first), ...ids(rest)]).toEqual(daemon.list(false).map((t) => t.id));
    expect(rest.headers[NEXT_CURSOR_HEADER]).toBeUndefined();
  });

  it('filters by state (any state) and, for admins, by tenant; a user lists its own tenant only', async () => {
    expect((await list('?state=killed')).json()).toHaveLength(2);
    expect(((await list('?state=running,killed')).json() as TaskBody[]).map((t) => t.state).sort()).toEqual(['killed', 'killed', 'running']);
    const alices = (await list('?all=1&tenant=alice&limit=1000')).json() as TaskBody[];
    expect(alices.length).toBeGreaterThan(200);
    expect(alices.every((t) => t.tenant === 'alice')).toBe(true);
    const asAlice = (await list('?all=1&limit=1000', 'alice-token')).json() as TaskBody[];
    expect(asAlice.map((t) => t.id)).toEqual(alices.map((t) => t.id));
    expect((await list('?limit=3', 'alice-token')).headers[NEXT_CURSOR_HEADER]).toBeDefined();
    const other = await list('?tenant=bob', 'alice-token');
    expect(other.statusCode).toBe(403);
    expect((await list('?tenant=alice', 'alice-token')).statusCode).toBe(200);
  });

  it.each([
    ['?limit=0', 'limit'],
    ['?limit=1001', 'limit'],
    ['?cursor=abc', 'cursor: is not a cursor'],
    ['?state=done', 'state: is not a list of task states'],
  ])('refuses %s', async (query, message) => {
    const r = await list(query);
    expect(r.statusCode).toBe(400);
    expect((r.json() as { error: { message: string } }).error.message).toContain(message);
  });

  it('the CLI follows the pages (gpushare ps), or stops at a maximum saying there is more', async () => {
    await local.listen({ host: '127.0.0.1', port: 0 });
    const address = local.server.address();
    const client = new Client({ kind: 'tcp', url: new URL(`http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`), token: undefined });
    expect((await listTasks(client, 'all=1')).tasks.map((t) => t.id)).toEqual(store.list(true).map((t) => t.id));
    expect(await listTasks(client, 'limit=10', 25)).toMatchObject({ more: true, tasks: { length: 25 } });
  });
});
