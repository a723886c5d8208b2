/**
 * The API's edge under hostile input (issue 17): lookups that stay inside the caller's tenant,
 * refusals that are audited, values that cannot be run refused at the door, errors in one
 * shape that never echo a large value.
 */
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { bearer as auth, errorOf, idOf, inProcessDaemon, TEST_TOKENS } from '../../test/helpers/api.js';

const gs = inProcessDaemon();
const { daemon, store } = gs;
const tcp = await gs.api({ tokens: TEST_TOKENS });
const local = await gs.api({ tokens: null });
afterAll(() => gs.close());

// CPU-only tasks that stay queued: nothing here needs a process, and a queued task's id is enough.
const submit = (token: string, body: Record<string, unknown> = {}) =>
  tcp.inject({ method: 'POST', url: '/v1/tasks', headers: auth(token), payload: { command: ['sleep', '60'], gpus: 0, cwd: '/', ...body } });
/** A task of the token's tenant that has run and exited. */
async function ended(token: string): Promise<string> {
  const id = idOf(await submit(token, { command: ['true'] }));
  for (let i = 0; i < 500 && ['queued', 'starting', 'running'].includes(daemon.get(id).state); i++) await new Promise((r) => setTimeout(r, 10));
  expect(daemon.get(id).state).toBe('exited');
  return id;
}

describe('task ids and prefixes resolve among the caller\'s tasks only', () => {
  it("a prefix shared with another tenant's task finds the caller's own; one only theirs match is not there", async () => {
    const bobs = idOf(await submit('bob-token'));
    let alices = '';
    for (let i = 0; i < 300 && alices[0] !== bobs[0]; i++) alices = idOf(await submit('alice-token'));
    expect(alices[0]).toBe(bobs[0]);
    const shared = await tcp.inject({ method: 'GET', url: `/v1/tasks/${bobs[0]}`, headers: auth('alice-token') });
    // Before: 400 "matches more than one task", which told alice that bob has a task starting so.
    expect(shared.statusCode).toBe(200);
    expect(idOf(shared)).toBe(alices);
    const theirs = bobs.slice(0, alices[1] === bobs[1] ? 12 : 2);
    const onlyBobs = await tcp.inject({ method: 'GET', url: `/v1/tasks/${theirs}`, headers: auth('alice-token') });
    expect(onlyBobs.statusCode).toBe(404);
    expect(errorOf(onlyBobs)).toEqual({ code: 'GS_ERR_NOT_FOUND', message: `no task "${theirs}"` });
    // An admin still sees both, and is told the prefix is ambiguous.
    const asAdmin = await tcp.inject({ method: 'GET', url: `/v1/tasks/${bobs[0]}`, headers: auth('root-token') });
    expect(asAdmin.statusCode).toBe(400);
    for (const t of daemon.list(false)) daemon.kill(t.id, { actor: 'test', role: 'admin' });
  });
});

describe('every refused change is audited with its code', () => {
  it.each([
    ['suspend', 'task.suspend'],
    ['resume', 'task.resume'],
    ['kill', 'task.kill'],
  ])('a refused %s', async (verb, action) => {
    const id = await ended('alice-token');
    const before = store.auditCount();
    const r = await tcp.inject({ method: 'POST', url: `/v1/tasks/${id}/${verb}`, headers: auth('alice-token') });
    expect(r.statusCode).toBeGreaterThanOrEqual(400);
    const rows = daemon.auditLog(0, 100_000).slice(before);
    expect(rows.map((a) => [a.actor, a.action, a.target, a.result])).toEqual([[expect.stringMatching(/^tenant:alice\/token:[0-9a-f]{12}$/), action, id, errorOf(r).code]]);
  });
});

describe('values that cannot be run are refused at the door', () => {
  it.each([
    ['a NUL in the program', { command: ['sle\0ep', '1'] }, 'command.0'],
    ['a NUL in an argument', { command: ['sleep', '1\0'] }, 'command.1'],
    ['a NUL in a variable value', { env: { A: 'x\0y' } }, 'env.A'],
    ['a NUL in a variable name', { env: { 'A\0B': 'x' } }, 'env.A\\0B'],
    ['a NUL in the working directory', { cwd: '/tmp\0/x' }, 'cwd'],
    ['an empty program', { command: ['', 'x'] }, 'command.0'],
  ])('%s: 400 naming the field, nothing created', async (_name, body, field) => {
    const tasks = store.list(true).length;
    const r = await submit('alice-token', body);
    expect(r.statusCode).toBe(400);
    expect(errorOf(r).code).toBe('GS_ERR_INVALID_ARGUMENT');
    expect(errorOf(r).issues?.map((i) => i.field)).toContain(field);
    expect(store.list(true)).toHaveLength(tasks);
  });
});

describe('errors in one shape that never echo a large value', () => {
  const big = 'A'.repeat(1_000_000);
  it.each([
    ['a 1 MB variable name', { env: { [`${big}-`]: 'x' } }],
    ['a 1 MB memory size', { memory: big }],
    ['a 1 MB tenant', { tenant: big }],
    ['a 1 MB signal', null],
  ])('%s', async (_name, body) => {
    const id = idOf(await submit('alice-token'));
    const r = body === null
      ? await tcp.inject({ method: 'POST', url: `/v1/tasks/${id}/kill`, headers: auth('alice-token'), payload: { signal: big } })
      : await submit('alice-token', body);
    expect(r.statusCode).toBe(400);
    expect(errorOf(r).code).toBe('GS_ERR_INVALID_ARGUMENT');
    expect(r.body.length).toBeLessThan(2000);
    daemon.kill(id, { actor: 'test', role: 'admin' });
  });

  it('a kill without a body (even one declared as JSON) uses the defaults', async () => {
    const a = idOf(await submit('alice-token'));
    const b = idOf(await submit('alice-token'));
    const bare = await tcp.inject({ method: 'POST', url: `/v1/tasks/${a}/kill`, headers: auth('alice-token') });
    expect(bare.statusCode, bare.body).toBe(200);
    const declared = await tcp.inject({ method: 'POST', url: `/v1/tasks/${b}/kill`, headers: { ...auth('alice-token'), 'content-type': 'application/json' }, payload: '' });
    expect(declared.statusCode, declared.body).toBe(200);
    for (const r of [bare, declared]) expect(r.json()).toMatchObject({ killRequested: true });
  });

  it('a malformed JSON body, an unknown endpoint and an over-long path parameter answer in the error body', async () => {
    const bad = await tcp.inject({ method: 'POST', url: '/v1/tasks', headers: { ...auth('alice-token'), 'content-type': 'application/json' }, payload: '{"command": [' });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).code).toBe('GS_ERR_INVALID_ARGUMENT');
    const unknown = await local.inject({ method: 'PUT', url: `/v1/${'x'.repeat(5000)}` });
    expect(unknown.statusCode).toBe(404);
    expect(errorOf(unknown).code).toBe('GS_ERR_NOT_FOUND');
    expect(unknown.body.length).toBeLessThan(400);
    const long = await local.inject({ method: 'GET', url: `/v1/tasks/${'a'.repeat(5000)}` });
    expect(long.statusCode).toBe(414);
    expect(errorOf(long).code).toBe('GS_ERR_INVALID_ARGUMENT');
    expect(long.body.length).toBeLessThan(400);
  });

  it('a body over 4 MiB (413) answers in the error body, and the refused submission is audited', async () => {
    const before = store.auditCount();
    const r = await submit('alice-token', { command: ['x'.repeat(5 * 1024 * 1024)] });
    expect(r.statusCode).toBe(413);
    expect(errorOf(r).code).toBe('GS_ERR_INVALID_ARGUMENT');
    expect(r.body.length).toBeLessThan(400);
    expect(daemon.auditLog(0, 100_000).slice(before).map((a) => [a.actor, a.action, a.result])).toEqual([[expect.stringMatching(/^tenant:alice\/token:[0-9a-f]{12}$/), 'task.submit', 'GS_ERR_INVALID_ARGUMENT']]);
  });

  it('headers over the limit (431) answer in the error body, on a real socket', async () => {
    await local.listen({ host: '127.0.0.1', port: 0 });
    const address = local.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const answer = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write(`GET /v1/gpus HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(64 * 1024)}\r\n\r\n`));
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('close', () => resolve(text));
      s.on('error', (err) => (text === '' ? reject(err) : resolve(text)));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ error: { code: 'GS_ERR_INVALID_ARGUMENT', message: 'the request line and headers are larger than 16 KiB' } });
  });
});
