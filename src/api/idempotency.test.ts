/** Idempotency-Key on POST /v1/tasks: a client's retry after a timeout does not make a second task. */
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { inProcessDaemon, TEST_TOKENS } from '../../test/helpers/api.js';
import { openDatabase } from '../node/store/db.js';
import { IDEMPOTENCY_WINDOW_MS } from '../node/store/idempotency.js';
import { TaskStore } from '../node/store/tasks.js';

let clock = Date.UTC(2027, 0, 1);
const gs = inProcessDaemon({ now: () => clock });
const { store, dbPath } = gs;
const tcp = await gs.api({ tokens: TEST_TOKENS });
afterAll(() => gs.close());

// CPU-only tasks that exit at once.
const body = { command: ['true'], gpus: 0, cwd: '/', priority: 'low' };
const submit = (token: string, key: string | undefined, payload: Record<string, unknown> = body) =>
  tcp.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${token}`, ...(key === undefined ? {} : { 'idempotency-key': key }) }, payload });
const idOf = (r: { json: () => unknown }): string => (r.json() as { id: string }).id;

describe('Idempotency-Key on submission', () => {
  it('a retry with the same key and body gets the same task (200, marked replayed); nothing new is made or audited', async () => {
    const first = await submit('alice-token', 'key-1');
    expect(first.statusCode).toBe(201);
    const tasks = store.list(true).length;
    const audits = store.auditCount();
    // The same body with its fields in another order is the same body.
    const again = await submit('alice-token', 'key-1', { priority: 'low', cwd: '/', gpus: 0, command: ['true'] });
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(idOf(again)).toBe(idOf(first));
    expect(store.list(true)).toHaveLength(tasks);
    expect(store.auditCount()).toBe(audits);
  });

  it('the same key with another body is refused (422, its own code), naming the task the key made', async () => {
    const first = idOf(await submit('alice-token', 'key-2'));
    const other = await submit('alice-token', 'key-2', { ...body, command: ['false'] });
    expect(other.statusCode).toBe(422);
    expect(other.json()).toMatchObject({ error: { code: 'GS_ERR_IDEMPOTENCY_MISMATCH', message: expect.stringContaining(`Idempotency-Key "key-2" was used for a different submission (task ${first},`) } });
  });

  it("keys are per caller: another tenant's same key is its own submission", async () => {
    const a = idOf(await submit('alice-token', 'shared-key'));
    const b = await submit('bob-token', 'shared-key');
    expect(b.statusCode).toBe(201);
    expect(idOf(b)).not.toBe(a);
  });

  it('without a key every submission is new; a malformed key is refused', async () => {
    expect(idOf(await submit('alice-token', undefined))).not.toBe(idOf(await submit('alice-token', undefined)));
    const bad = await submit('alice-token', 'has space');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { message: expect.stringMatching(/^Idempotency-Key: expected one value/) as unknown } });
    expect((await submit('alice-token', 'k'.repeat(201))).statusCode).toBe(400);
  });

  it('keys are kept in the database (a restarted daemon replays them) for 24 h', async () => {
    const first = idOf(await submit('alice-token', 'key-durable'));
    const reopened = new TaskStore(openDatabase(dbPath));
    // Keys are the token's own: its actor is its tenant and its id (the secret's SHA-256, first 12 hex digits).
    const actor = `tenant:alice/token:${createHash('sha256').update('alice-token').digest('hex').slice(0, 12)}`;
    expect(reopened.idempotency.find(actor, 'key-durable', clock)?.taskId).toBe(first);
    clock += IDEMPOTENCY_WINDOW_MS - 1;
    expect(idOf(await submit('alice-token', 'key-durable'))).toBe(first);
    clock += 1;
    const later = await submit('alice-token', 'key-durable');
    expect(later.statusCode).toBe(201);
    expect(idOf(later)).not.toBe(first);
  });
});
