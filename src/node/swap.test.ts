import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../test/helpers/cli.js';
import { SwapSessions, swapDirFor } from './swap.js';

/**
 * Slice swap driven the daemon's way: fake-train (the fake driver's stand-in for a training
 * job) under the release libgpushare with GPUSHARE_SWAP, swapped out and in through its control
 * socket while it runs; it ends reading back every byte it wrote.
 */
const LIB = `${REPO_ROOT}build/native/libgpushare.so`;
const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const root = mkdtempSync(join(tmpdir(), 'gpushare-swap-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function train(name: string, swap: boolean): { child: ChildProcess; dir: string; ready: Promise<void>; done: Promise<{ code: number | null; out: string }> } {
  const dir = swapDirFor(join(root, name, 'region'));
  mkdirSync(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: LIB, GPUSHARE_FAKE_CUDA: '{"contextBytes": 1048576}', GPUSHARE_MEMORY_LIMIT: '64Mi', GPUSHARE_LOG_LEVEL: 'error' };
  if (swap) env['GPUSHARE_SWAP'] = dir;
  // Its own process group, as the daemon's tasks: the group is what gets SIGSTOP/SIGCONT.
  const child = spawn(TRAIN, ['60', '20', '16', '7'], { env, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const reader = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = new Promise<void>((resolve) => reader.on('line', (line) => (lines.push(line), line.startsWith('ready') && resolve())));
  const done = new Promise<{ code: number | null; out: string }>((resolve) => child.once('close', (code) => resolve({ code, out: lines.join('\n') })));
  return { child, dir, ready, done };
}

/** Whether pid is stopped, within a second (a signal is delivered asynchronously). */
async function stopped(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (/^\d+ \(.*\) T /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

describe('slice swap through libgpushare (fake driver)', () => {
  it('swaps a task out (its group stopped) and in; it finishes with every byte', async () => {
    expect(existsSync(TRAIN) && existsSync(LIB), 'built by npm run build').toBe(true);
    const t = train('a', true);
    await t.ready;
    const pid = t.child.pid ?? -1;
    const sessions = new SwapSessions();
    const out = await sessions.out('a', t.dir, pid);
    expect(out).toMatchObject({ ok: true, value: { path: 'swap', bytes: 16 * 2 ** 20, processes: 1 } });
    expect(sessions.has('a')).toBe(true);
    expect(await stopped(pid)).toBe(true);
    const back = await sessions.in('a', pid);
    expect(back).toMatchObject({ ok: true, value: { path: 'swap', bytes: 16 * 2 ** 20 } });
    expect(back.ok && back.value.gbps !== null && back.value.gbps > 0).toBe(true);
    expect(sessions.has('a')).toBe(false);
    const end = await t.done;
    expect(end.out).toMatch(/result ok/);
    expect(end.code).toBe(0);
  });

  it('a daemon that goes away: the task swaps itself back in at its SIGCONT and finishes', async () => {
    const t = train('b', true);
    await t.ready;
    const pid = t.child.pid ?? -1;
    const sessions = new SwapSessions();
    expect((await sessions.out('b', t.dir, pid)).ok).toBe(true);
    sessions.drop('b'); // the connections close, as the daemon's death closes them
    process.kill(-pid, 'SIGCONT');
    const end = await t.done;
    expect(end.out).toMatch(/result ok/);
  });

  it('refuses, changing nothing, a task whose processes have no swap control', async () => {
    const t = train('c', false);
    await t.ready;
    const pid = t.child.pid ?? -1;
    const sessions = new SwapSessions();
    const r = await sessions.out('c', t.dir, pid);
    expect(r).toMatchObject({ ok: false, code: 'swap-unavailable' });
    expect(!r.ok && r.message).toMatch(/has no swap control/);
    expect(/^\d+ \(.*\) T /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))).toBe(false);
    expect((await t.done).out).toMatch(/result ok/);
    const none = spawn('sleep', ['5'], { detached: true, stdio: 'ignore' });
    const r2 = await sessions.out('d', t.dir, none.pid ?? -1);
    expect(r2).toMatchObject({ ok: false, code: 'swap-unavailable', message: 'the task has no CUDA process' });
    none.kill('SIGKILL');
    none.unref();
  });

  it('a process that cannot get a socket says so (<pid>.noswap): its task is not pending, counted at its promise at once', async () => {
    const t = train(`long-${'x'.repeat(100)}`, true); // <dir>/<pid>.sock is over sun_path's 108 bytes
    await t.ready;
    const pid = t.child.pid ?? -1;
    expect(existsSync(join(t.dir, `${pid}.noswap`))).toBe(true);
    expect(existsSync(join(t.dir, `${pid}.sock`))).toBe(false);
    expect(SwapSessions.pending(t.dir, pid)).toBe(false);
    expect(SwapSessions.swappable(t.dir, pid)).toBe(false);
    expect((await t.done).out).toMatch(/result ok/);
  });
});
