/**
 * Remote GPU sessions through the daemon (docs/remote.md): `gpushare run --remote` and
 * `gpushare remote open` against a real daemon on the simulated backend. The session's worker
 * runs as a task (on the fake driver, with the real libgpushare the launcher preloads), the
 * driver-API test program (native/remote/tests/remote_app.c) runs here through the client
 * libcuda.so.1. Checked: the program's results, the slice's memory limit in the worker, the
 * task in the list and its audit row, and that the session ends when its program does.
 */
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemoteSessionBody } from '../../src/contract/remote.js';
import type { AuditRecordBody, TaskBody } from '../../src/contract/schemas.js';
import { clientEnv } from '../../src/cli/commands/remote-session.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness } from '../daemon/harness.js';

const NATIVE = `${REPO_ROOT}build/native`;
const APP = `${NATIVE}/remote/tests/remote_app`;
const built = existsSync(APP) && existsSync(`${NATIVE}/gpushare-remote-worker`) && existsSync(`${NATIVE}/remote/libcuda.so.1`);

describe.skipIf(!built)('remote GPU sessions through the daemon', () => {
  const h = new Harness();
  let env: Record<string, string>;

  beforeAll(async () => {
    // The worker as the daemon's machine would run it (the daemon's GPUSHARE_REMOTE_WORKER),
    // here on the fake driver: the daemon's GPUs (the task sees its GPU by UUID), 4 MiB contexts.
    const worker = join(h.dir, 'worker.sh');
    const fakeFile = join(h.dir, 'fake.json');
    writeFileSync(worker, `#!/bin/sh\nexport LD_LIBRARY_PATH='${NATIVE}/fake'\nexport GPUSHARE_FAKE_CUDA="$(cat '${fakeFile}')"\nexport ASAN_OPTIONS=detect_leaks=0\nexec '${NATIVE}/gpushare-remote-worker' "$@"\n`);
    chmodSync(worker, 0o755);
    await h.start([], { GPUSHARE_REMOTE_WORKER: worker });
    const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
    writeFileSync(fakeFile, JSON.stringify({ contextBytes: 4 * 2 ** 20, devices: gpus.gpus.map((g) => ({ uuid: g.uuid })) }));
    env = { ASAN_OPTIONS: 'detect_leaks=0' };
  });
  afterAll(() => h.cleanup());

  it('runs a driver-API program here on the session, which is a task that ends with it', async () => {
    const r = await h.run(['run', '--remote', h.socket, '--mem', '1Gi', '--', APP, 'full'], env);
    expect(r.stderr).not.toContain('FAIL');
    expect(r.stdout).toContain('remote_app full ok');
    expect(r.status).toBe(0);
    const tasks = await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1');
    const session = tasks.find((t) => t.command[0]?.endsWith('worker.sh'));
    expect(session).toBeDefined();
    const ended = await h.waitFor(session?.id ?? '');
    expect(ended.state).toBe('exited');
    expect(ended.exitCode).toBe(0);
    const audit = await h.client.json<AuditRecordBody[]>('GET', '/v1/audit');
    expect(audit.some((a) => a.action === 'task.submit' && a.target === session?.id && a.result === 'ok')).toBe(true);
    expect(audit.some((a) => a.action === 'remote.session.open' && a.target === session?.id && a.result === 'ok')).toBe(true);
  });

  it("holds the program to the session's memory limit, enforced in the worker", async () => {
    const r = await h.run(['run', '--remote', h.socket, '--mem', '256Mi', '--', APP, 'limit'], env);
    const m = /^limit (\d+) (\d+) (\d+)$/m.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    const [, got, code, total] = m ?? [];
    expect(Number(code)).toBe(2); // CUDA_ERROR_OUT_OF_MEMORY
    expect(Number(total)).toBe(256 * 2 ** 20);
    expect(Number(got)).toBeLessThanOrEqual(256 * 2 ** 20);
    expect(Number(got)).toBeGreaterThanOrEqual(240 * 2 ** 20);
  });

  it('opens a session for a program started by hand (`remote open` prints its environment)', async () => {
    const r = await h.run(['remote', 'open', '--mem', '512Mi'], env);
    expect(r.status, r.stderr).toBe(0);
    const vars = Object.fromEntries([...r.stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
    expect(vars['GPUSHARE_REMOTE']).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(vars['GPUSHARE_REMOTE_KEY']).toMatch(/^[0-9a-f]{64}$/);
    const app = spawnSync(APP, ['full'], { env: { ...process.env, ...vars, ASAN_OPTIONS: 'detect_leaks=0' }, encoding: 'utf8' });
    expect(app.stderr).not.toContain('FAIL');
    expect(app.stdout).toContain('remote_app full ok');
    const id = /remote session (\S+) listening/.exec(r.stderr)?.[1] ?? '';
    expect((await h.waitFor(id)).exitCode).toBe(0);
  });

  it('makes the key itself and shows it only in its answer: never in a task read, `inspect`, the audit log or the worker\'s argv', async () => {
    const opened = await h.client.exchange<RemoteSessionBody>('POST', '/v1/remote/sessions', { memory: '512Mi' });
    expect(opened.status).toBe(201);
    const { task, key, port, endpoint } = opened.body;
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(endpoint).toBe(`127.0.0.1:${port}`);
    const keyFile = task.command[task.command.indexOf('--key-file') + 1] ?? '';
    expect(existsSync(keyFile)).toBe(false); // removed once the worker read it
    const reads = [
      JSON.stringify(task),
      JSON.stringify(await h.client.json('GET', `/v1/tasks/${task.id}`)),
      JSON.stringify(await h.client.json('GET', '/v1/tasks?all=1')),
      JSON.stringify(await h.client.json('GET', '/v1/audit')),
      (await h.run(['inspect', task.id])).stdout,
      (await h.run(['ps', '-a'])).stdout,
    ];
    for (const text of reads) expect(text).not.toContain(key);
    expect(reads[4]).toContain(task.id);
    const cmdline = readFileSync(`/proc/${String((await h.client.json<TaskBody>('GET', `/v1/tasks/${task.id}`)).pid)}/cmdline`, 'utf8');
    expect(cmdline).not.toContain(key);
    // The key opens it: the program runs on it, and the session ends with the program.
    const app = spawnSync(APP, ['full'], { env: { ...process.env, ...clientEnv({}, endpoint ?? '', key, `${NATIVE}/remote`), ASAN_OPTIONS: 'detect_leaks=0' }, encoding: 'utf8' });
    expect(app.stdout, app.stderr).toContain('remote_app full ok');
    expect((await h.waitFor(task.id)).exitCode).toBe(0);
  });

  it.each([
    ['two GPUs', { gpus: 2 }, /gpus/],
    ['a command of its own', { command: ['sh'] }, /command/],
    ['a port out of range', { port: 70000 }, /port/],
    ['a memory that is not a size', { memory: 'lots' }, /memory|lots/],
  ])('refuses a body with %s with a clear 400, opening nothing', async (_what, body, message) => {
    const before = (await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1')).length;
    await expect(h.client.json('POST', '/v1/remote/sessions', body)).rejects.toMatchObject({ code: 'GS_ERR_INVALID_ARGUMENT', message: expect.stringMatching(message) });
    expect((await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1')).length).toBe(before);
  });

  it("holds a session to its tenant's quota: refused when it never fits, queued (no port yet) while the quota is in use", async () => {
    await h.client.json('POST', '/v1/tenants', { name: 'small', quota: { memory: '1Gi' } });
    await expect(h.client.json('POST', '/v1/remote/sessions', { memory: '2Gi', tenant: 'small' })).rejects.toThrow(/quota/);
    const audit = await h.client.json<AuditRecordBody[]>('GET', '/v1/audit');
    expect(audit.some((a) => a.action === 'remote.session.open' && a.result !== 'ok')).toBe(true);
    const first = await h.client.exchange<RemoteSessionBody>('POST', '/v1/remote/sessions', { memory: '768Mi', tenant: 'small' });
    expect(first.status).toBe(201);
    const second = await h.client.exchange<RemoteSessionBody>('POST', '/v1/remote/sessions', { memory: '512Mi', tenant: 'small', waitSeconds: 0.5 });
    expect(second.status).toBe(202);
    expect(second.body.port).toBeNull();
    const now = await h.client.json<TaskBody>('GET', `/v1/tasks/${second.body.task.id}`);
    expect(now).toMatchObject({ state: 'queued', tenant: 'small' });
    expect(now.waiting?.kind).toBe('quota');
    const keyFile = now.command[now.command.indexOf('--key-file') + 1] ?? '';
    expect(existsSync(keyFile)).toBe(true); // kept for the worker until it runs
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(keyFile)).mode & 0o777).toBe(0o700);
    for (const t of [second.body.task, first.body.task]) await h.client.json('POST', `/v1/tasks/${t.id}/kill`, { signal: 'SIGKILL' });
    await h.waitFor(second.body.task.id);
    for (let i = 0; i < 40 && existsSync(keyFile); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(keyFile)).toBe(false); // its task ended unread: the key file goes
  });
});
