import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { GpuHealthSchema, GpusResponseSchema } from '../../contract/schemas.js';
import { openBackend } from '../../gpu/open.js';
import { Daemon } from '../../node/daemon.js';
import { findNativePaths } from '../../node/launcher.js';
import { openDatabase } from '../../node/store/db.js';
import { TaskStore } from '../../node/store/tasks.js';
import { buildApi } from '../server.js';

/** A daemon on two simulated H100s behind a TCP API with a user's and an admin's token. */
async function setUp() {
  const dir = mkdtempSync(join(tmpdir(), 'gpushare-api-gpus-'));
  const { backend } = openBackend({ backend: 'simulated', simulate: '2xH100-80GB' });
  const db = openDatabase(join(dir, 'db'));
  const logger = pino({ level: 'silent' });
  const daemon = new Daemon({ stateDir: dir, backend, store: new TaskStore(db), logger, native: findNativePaths(), policy: 'binpack', killGraceMs: 1000 });
  daemon.start();
  const token = (secret: string, tenant: string, role: 'user' | 'admin') => ({ sha256: createHash('sha256').update(secret).digest('hex'), tenant, role });
  const api = await buildApi({ daemon, logger, tokens: [token('user-token', 'alice', 'user'), token('root-token', 'ops', 'admin')], backend });
  return { dir, backend, db, daemon, api };
}
const { dir, backend, db, daemon, api } = await setUp();
afterAll(async () => {
  await api.close();
  daemon.close();
  db.close();
  backend.close();
  rmSync(dir, { recursive: true, force: true });
});

const uuids = backend.gpus().map((g) => g.uuid);
const post = (token: string, gpu: string, verb: 'cordon' | 'uncordon', payload?: Record<string, unknown>) =>
  api.inject({ method: 'POST', url: `/v1/gpus/${gpu}/${verb}`, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload }) });
const list = async () => GpusResponseSchema.parse((await api.inject({ method: 'GET', url: '/v1/gpus', headers: { authorization: 'Bearer user-token' } })).json()).gpus;

describe('POST /v1/gpus/:gpu/cordon and uncordon', () => {
  it('cordons by index or UUID with a note, shows it in the GPU list, and audits it', async () => {
    const r = await post('root-token', '1', 'cordon', { note: 'fan' });
    expect(r.statusCode).toBe(200);
    expect(GpuHealthSchema.parse(r.json())).toMatchObject({ index: 1, uuid: uuids[1], cordoned: true, cordon: { by: expect.stringMatching(/^tenant:ops\b/) as unknown, note: 'fan' }, fault: null });
    const byUuid = await post('root-token', uuids[0] ?? '', 'cordon', {});
    expect(byUuid.json()).toMatchObject({ index: 0, cordoned: true, cordon: { note: null } });
    expect((await list()).map((g) => [g.index, g.cordoned, g.cordon?.note ?? null, g.fault])).toEqual([
      [0, true, null, null],
      [1, true, 'fan', null],
    ]);
    const audit = daemon.auditLog(0, 100).filter((a) => a.action.startsWith('gpu.'));
    expect(audit.map((a) => [a.action, a.target, a.result])).toEqual([
      ['gpu.cordon', uuids[1], 'ok'],
      ['gpu.cordon', uuids[0], 'ok'],
    ]);
  });

  it('uncordon lifts the cordon and clears a fault', async () => {
    daemon.markGpuFault(uuids[0] ?? '', { kind: 'xid', code: 79, at: Date.now() });
    expect((await list())[0]?.fault).toMatchObject({ kind: 'xid', code: 79 });
    for (const gpu of ['0', '1']) {
      const r = await post('root-token', gpu, 'uncordon');
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ cordoned: false, cordon: null, fault: null });
    }
    expect((await list()).map((g) => [g.cordoned, g.fault])).toEqual([
      [false, null],
      [false, null],
    ]);
  });

  it.each([
    ['a user token', 'user-token', '0', { note: 'x' }, 403, 'GS_ERR_FORBIDDEN', /cordoning a GPU needs the admin role/],
    ['a GPU index the machine lacks', 'root-token', '7', {}, 404, 'GS_ERR_NOT_FOUND', /^no GPU 7 on this machine; it has 0 \(GPU-.*\), 1 \(GPU-.*\)$/],
    ['a UUID the machine lacks', 'root-token', 'GPU-0000', {}, 404, 'GS_ERR_NOT_FOUND', /^no GPU GPU-0000 on this machine/],
    ['neither an index nor a UUID', 'root-token', 'first', {}, 400, 'GS_ERR_INVALID_ARGUMENT', /neither a GPU index .* nor a GPU UUID/],
    ['a note of two lines', 'root-token', '0', { note: 'a\nb' }, 400, 'GS_ERR_INVALID_ARGUMENT', /one line/],
    ['an unknown field', 'root-token', '0', { reason: 'fan' }, 400, 'GS_ERR_INVALID_ARGUMENT', /reason/],
  ])('refuses %s and changes nothing but the audit log, which records the refusal', async (_name, token, gpu, body, status, code, message) => {
    const r = await post(token, gpu, 'cordon', body);
    expect(r.statusCode).toBe(status);
    const err = (r.json() as { error: { code: string; message: string } }).error;
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
    expect((await list()).every((g) => !g.cordoned)).toBe(true);
    expect(daemon.auditLog(0, 1000).at(-1)).toMatchObject({ action: 'gpu.cordon', target: gpu, result: code });
  });
});
