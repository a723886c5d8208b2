/**
 * Remote GPU sessions through the daemon (docs/remote.md): `gpushare run --remote` and
 * `gpushare remote open` against a real daemon on the simulated backend. The session's worker
 * runs as a task (on the fake driver, with the real libgpushare the launcher preloads), the
 * driver-API test program (native/remote/tests/remote_app.c) runs here through the client
 * libcuda.so.1. Checked: the program's results, the slice's memory limit in the worker, the
 * task in the list and its audit row, and that the session ends when its program does.
 */
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecordBody, TaskBody } from '../../src/contract/schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness } from '../daemon/harness.js';

const NATIVE = `${REPO_ROOT}build/native`;
const APP = `${NATIVE}/remote/tests/remote_app`;
const built = existsSync(APP) && existsSync(`${NATIVE}/gpushare-remote-worker`) && existsSync(`${NATIVE}/remote/libcuda.so.1`);

describe.skipIf(!built)('remote GPU sessions through the daemon', () => {
  const h = new Harness();
  let env: Record<string, string>;

  beforeAll(async () => {
    await h.start();
    // The worker as the daemon's machine would run it, here on the fake driver: the daemon's
    // GPUs (the task sees its GPU by UUID), 4 MiB contexts.
    const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
    const fake = JSON.stringify({ contextBytes: 4 * 2 ** 20, devices: gpus.gpus.map((g) => ({ uuid: g.uuid })) });
    const worker = join(h.dir, 'worker.sh');
    writeFileSync(worker, `#!/bin/sh\nexport LD_LIBRARY_PATH='${NATIVE}/fake'\nexport GPUSHARE_FAKE_CUDA='${fake}'\nexec '${NATIVE}/gpushare-remote-worker' "$@"\n`);
    chmodSync(worker, 0o755);
    env = { GPUSHARE_REMOTE_WORKER: worker, ASAN_OPTIONS: 'detect_leaks=0' };
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
});
