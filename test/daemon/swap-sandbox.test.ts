/**
 * Slice swap for a task that runs as its tenant's own user (issue 22; docs/security.md): the
 * daemon as root with --sandbox on and --swap. The library makes the control directory in the
 * task's own directory as the task's user (0700) and its socket 0600: the daemon (root)
 * connects and swaps the task out and in; another tenant's user cannot connect. Switching users
 * needs root: without it these tests are skipped, saying so.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskBody } from '../../src/contract/schemas.js';
import { daemonKey } from '../../src/node/sandbox-plan.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness, sleep, stateBecomes } from './harness.js';

const isRoot = process.getuid?.() === 0;
const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const MiB = 2 ** 20;
const h = new Harness();

async function waitForOutput(task: TaskBody, text: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = existsSync(task.stdoutPath) ? readFileSync(task.stdoutPath, 'utf8') : '';
    if (out.includes(text)) return out;
    if (Date.now() > deadline) throw new Error(`task ${task.id} never printed "${text}": ${out}`);
    await sleep(30);
  }
}

/** Whether `uid` can connect to the Unix socket at `path` (a node child run as that user). */
function canConnect(path: string, uid: number, gid: number): string {
  const script = `const s=require('net').connect(${JSON.stringify(path)});s.on('connect',()=>{console.log('connected');s.destroy()});s.on('error',(e)=>console.log(e.code))`;
  const r = spawnSync(process.execPath, ['-e', script], { uid, gid, cwd: '/', encoding: 'utf8', timeout: 10_000 });
  return r.stdout.trim();
}

describe.skipIf(!isRoot)(`slice swap for tasks as their tenant's own user${isRoot ? '' : ' (skipped: the daemon must be root to switch users, and these tests are not)'}`, () => {
  let ckpt = '';
  let fake = '';
  beforeAll(async () => {
    chmodSync(h.dir, 0o755);
    ckpt = join(h.dir, 'ckpt');
    mkdirSync(ckpt, { recursive: true });
    chmodSync(ckpt, 0o1777); // the fake driver's per-process files, written by the tasks' users
    await h.start(['--sandbox', 'on', '--swap', '--pass-env', 'GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1`, GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR: ckpt });
    const gpus = await h.client.json<{ gpus: { uuid: string; name: string }[] }>('GET', '/v1/gpus');
    fake = JSON.stringify({ contextBytes: 4 * MiB, devices: gpus.gpus.map((g) => ({ uuid: g.uuid, name: g.name })) });
  });
  afterAll(async () => {
    await h.cleanup();
    rmSync(join('/var/lib/gpushare/tasks', daemonKey(h.stateDir)), { recursive: true, force: true });
  });

  it("swaps team-a's task out and in through a socket only its user and the daemon can reach", async () => {
    const a = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: [TRAIN, '80', '40', '16', '3'], env: { GPUSHARE_FAKE_CUDA: fake }, tenant: 'team-a', gpus: 1, memory: '8Gi', compute: 30, cwd: '/' });
    const b = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: ['sh', '-c', 'echo "uid $(id -u) gid $(id -g)"; exec sleep 60'], tenant: 'team-b', gpus: 0, cwd: '/' });
    await waitForOutput(a, 'ready');
    const bIds = /uid (\d+) gid (\d+)/.exec(await waitForOutput(b, 'uid '));
    const task = await h.task(a.id);
    const dir = join(dirname(task.regionPath), 'swap');
    const socks = readdirSync(dir).filter((f) => f.endsWith('.sock'));
    expect(socks).toHaveLength(1);
    const sock = join(dir, socks[0] ?? '');
    const aUid = statSync(dirname(task.regionPath)).uid;
    expect(aUid).not.toBe(0);
    const st = statSync(dir);
    expect({ uid: st.uid, mode: st.mode & 0o777 }).toEqual({ uid: aUid, mode: 0o700 });
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    // Another tenant's user: refused (its own directory alone is closed to it; the socket is 0600 besides).
    expect(canConnect(sock, Number(bIds?.[1]), Number(bIds?.[2]))).toBe('EACCES');

    const s = await h.run(['suspend', '--json', a.id]);
    expect(s.stderr).toBe('');
    expect((JSON.parse(s.stdout) as { state: string; path: string }[])[0]).toMatchObject({ state: 'suspended', path: 'swap' });
    const pid = Number(socks[0]?.replace('.sock', ''));
    expect(await stateBecomes(pid, 'T')).toBe('T');
    const r = await h.run(['resume', '--json', a.id]);
    expect((JSON.parse(r.stdout) as { state: string; path: string }[])[0]).toMatchObject({ state: 'running', path: 'swap' });
    const done = await h.waitFor(a.id, undefined, 30_000);
    expect(done.exitCode).toBe(0);
    expect(readFileSync(a.stdoutPath, 'utf8')).toMatch(/^result ok sum=[0-9a-f]+$/m);
    await h.run(['kill', b.id]);
  }, 60_000);
});
