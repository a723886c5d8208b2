/**
 * Remote GPU sessions through the daemon (docs/remote.md): `gpushare run --remote` and
 * `gpushare remote open` against a real daemon on the simulated backend. The session's worker
 * runs as a task (on the fake driver, with the real libgpushare the launcher preloads), the
 * driver-API test program (native/remote/tests/remote_app.c) runs here through the client
 * libcuda.so.1. Checked: the program's results, the slice's memory limit in the worker, the
 * task in the list and its audit row, and that the session ends when its program does.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemoteSessionBody } from '../../src/contract/remote.js';
import type { AuditRecordBody, TaskBody } from '../../src/contract/schemas.js';
import { clientEnv } from '../../src/cli/commands/remote-session.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/api.js';
import { makePki } from '../helpers/tls.js';
import { daemonKey } from '../../src/node/sandbox-plan.js';
import { Harness } from '../daemon/harness.js';

const NATIVE = `${REPO_ROOT}build/native`;
const APP = `${NATIVE}/remote/tests/remote_app`;
const built = existsSync(APP) && existsSync(`${NATIVE}/gpushare-remote-worker`) && existsSync(`${NATIVE}/remote/libcuda.so.1`);

/**
 * Starts h's daemon with the worker as the daemon's machine would run it (the daemon's
 * GPUSHARE_REMOTE_WORKER), here on the fake driver: the daemon's GPUs (the task sees its GPU by
 * UUID), 4 MiB contexts.
 */
async function startWithWorker(h: Harness, extra: readonly string[] = [], listen: readonly string[] = []): Promise<void> {
  const worker = join(h.dir, 'worker.sh');
  const fakeFile = join(h.dir, 'fake.json');
  writeFileSync(worker, `#!/bin/sh\nexport LD_LIBRARY_PATH='${NATIVE}/fake'\nexport GPUSHARE_FAKE_CUDA="$(cat '${fakeFile}')"\nexport ASAN_OPTIONS=detect_leaks=0\nexec '${NATIVE}/gpushare-remote-worker' "$@"\n`);
  chmodSync(worker, 0o755);
  await h.start(extra, { GPUSHARE_REMOTE_WORKER: worker }, undefined, listen);
  const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
  writeFileSync(fakeFile, JSON.stringify({ contextBytes: 4 * 2 ** 20, devices: gpus.gpus.map((g) => ({ uuid: g.uuid })) }));
}

/** The driver-API program here, on the session the answer describes. */
function runApp(opened: RemoteSessionBody, pin: string | null = opened.tls?.sha256 ?? null): SpawnSyncReturns<string> {
  const vars = clientEnv({}, opened.endpoint ?? '', opened.key, `${NATIVE}/remote`, pin);
  return spawnSync(APP, ['full'], { env: { ...process.env, ...vars, ASAN_OPTIONS: 'detect_leaks=0' }, encoding: 'utf8' });
}

describe.skipIf(!built)('remote GPU sessions through the daemon', () => {
  const h = new Harness();
  let env: Record<string, string>;

  beforeAll(async () => {
    await startWithWorker(h);
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
    ['a tenant name a submission refuses', { tenant: 'no such/tenant' }, /not a tenant name/],
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

  it("answers a TLS session's certificate pin; the program reaches the worker over TLS with it, and a wrong pin is refused before the key is sent", async () => {
    const opened = await h.client.exchange<RemoteSessionBody>('POST', '/v1/remote/sessions', { memory: '256Mi', tls: true });
    expect(opened.status).toBe(201);
    const sha256 = opened.body.tls?.sha256 ?? '';
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(opened.body.task.command).toContain('--tls');
    const app = runApp(opened.body);
    expect(app.stdout, app.stderr).toContain('remote_app full ok');
    expect((await h.waitFor(opened.body.task.id)).exitCode).toBe(0);

    const other = await h.client.exchange<RemoteSessionBody>('POST', '/v1/remote/sessions', { memory: '256Mi', tls: true });
    const wrong = runApp(other.body, sha256); // the first session's pin: not this worker's certificate
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain("the worker's certificate is not the pinned one");
    const ended = await h.waitFor(other.body.task.id);
    expect(ended.exitCode).toBe(5); // no HELLO came: the session is spent
    const plain = await h.client.exchange<RemoteSessionBody>('POST', '/v1/remote/sessions', { memory: '256Mi' });
    expect(plain.body.tls).toBeNull(); // over the Unix socket: plaintext unless asked
    expect(plain.body.task.command).not.toContain('--tls');
    await h.client.json('POST', `/v1/tasks/${plain.body.task.id}/kill`, { signal: 'SIGKILL' });
  });
});

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe.skipIf(!built)('remote sessions of a daemon whose API runs TLS', () => {
  const h = new Harness();
  let env: Record<string, string>;

  beforeAll(async () => {
    const pki = makePki(h.dir);
    const config = join(h.dir, 'config.json');
    writeFileSync(config, JSON.stringify({ tokens: [{ sha256: sha('ops-secret'), tenant: 'ops', role: 'admin' }] }));
    const port = await freePort();
    await startWithWorker(h, ['--config', config, '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey], [`127.0.0.1:${port}`]);
    env = { GPUSHARE_HOST: `https://127.0.0.1:${port}`, GPUSHARE_TOKEN: 'ops-secret', GPUSHARE_CA_FILE: pki.ca, ASAN_OPTIONS: 'detect_leaks=0' };
  }, 60_000);
  afterAll(() => h.cleanup());

  it('`run --remote` over the TLS API gets a TLS data path by default, and the program runs through it', async () => {
    const r = await h.run(['run', '--remote', env['GPUSHARE_HOST'] ?? '', '--mem', '256Mi', '--', APP, 'full'], env);
    expect(r.stderr).not.toContain('FAIL');
    expect(r.stdout).toContain('remote_app full ok');
    expect(r.status).toBe(0);
    const tasks = await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1');
    const session = tasks.find((t) => t.command[0]?.endsWith('worker.sh'));
    expect(session?.command).toContain('--tls');
    const out = await h.run(['logs', session?.id ?? ''], env);
    expect(out.stdout).toMatch(/^gpushare-remote-worker listening \d+ tls-sha256 [0-9a-f]{64}$/m);
  });
});

const isRoot = process.getuid?.() === 0;

describe.skipIf(!built || !isRoot)(`remote sessions with sandbox users${isRoot ? '' : ' (skipped: switching users needs root)'}`, () => {
  const h = new Harness();

  beforeAll(async () => {
    await startWithWorker(h, ['--sandbox', 'on']);
    // The worker's script is in h.dir, which the daemon's start leaves 0700: the tenant's user must reach it.
    chmodSync(h.dir, 0o755);
  });
  afterAll(async () => {
    await h.cleanup();
    rmSync(join('/var/lib/gpushare/tasks', daemonKey(h.stateDir)), { recursive: true, force: true });
  });

  it("hands the key to the worker running as the tenant's own user, and the program connects", async () => {
    const opened = await h.client.exchange<RemoteSessionBody>('POST', '/v1/remote/sessions', { memory: '256Mi', tenant: 'team-r' });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    // The task's pid is its wrapper's (gpushare-exec stays root); the worker is its child.
    const pid = String((await h.client.json<TaskBody>('GET', `/v1/tasks/${opened.body.task.id}`)).pid);
    const worker = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0] ?? '';
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${worker}/status`, 'utf8'))?.[1]);
    expect(uid).toBeGreaterThanOrEqual(1_900_000_000); // an allocated tenant user, not root
    const keyFile = opened.body.task.command[opened.body.task.command.indexOf('--key-file') + 1] ?? '';
    expect(existsSync(keyFile)).toBe(false); // read and removed
    expect(statSync(dirname(keyFile)).mode & 0o777).toBe(0o711);
    const app = runApp(opened.body);
    expect(app.stdout, app.stderr).toContain('remote_app full ok');
    expect((await h.waitFor(opened.body.task.id)).exitCode).toBe(0);
  });
});
