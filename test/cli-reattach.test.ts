/**
 * The CLI against a real daemon that is killed and restarted, or stopped (SIGSTOP): `run`
 * re-attaches and goes on where the output stopped, a stuck daemon is named after the timeout,
 * and `run` keeps docker's 126 for a command that cannot be executed.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCK_FILE, readHolder } from '../src/node/state-lock.js';
import { Harness, sleep } from './daemon/harness.js';

let h: Harness;
let stopped: number | null = null;
afterEach(async () => {
  if (stopped !== null) process.kill(stopped, 'SIGCONT');
  stopped = null;
  await h.cleanup();
});

/** The daemon's pid, from the state directory's lock (state-lock.ts). */
function daemonPid(): number {
  const holder = readHolder(join(h.stateDir, LOCK_FILE));
  if (holder === null) throw new Error('no daemon holds the state directory');
  return holder.pid;
}

describe('run re-attaches', () => {
  it.each(['SIGKILL', 'SIGTERM'] as const)('after a daemon %s and restart: output resumes where it stopped, the exit code is the task\'s', async (signal) => {
    h = new Harness();
    await h.start();
    const go = join(h.dir, 'go');
    const run = h.cli(['run', '--gpus', '0', '--', 'sh', '-c', `echo one; echo err-one >&2; while [ ! -e ${go} ]; do sleep 0.02; done; echo two; exit 3`]);
    let out = '';
    let err = '';
    run.child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    run.child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    while (!out.includes('one') || !err.includes('err-one')) await sleep(20);
    await h.stop(signal);
    while (!err.includes('reconnecting to the daemon at')) await sleep(20);
    await h.start();
    while (!err.includes('following task')) await sleep(20);
    writeFileSync(go, '');
    const r = await run.done;
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('one\ntwo\n'); // nothing printed twice
    expect(r.stderr).toMatch(new RegExp(`^err-one\\ngpushare: .*; task [0-9a-f]{12} goes on\\ngpushare: reconnecting to the daemon at ${h.socket} \\(for up to 120 s; Ctrl-C twice stops waiting\\)\\.\\.\\.\\ngpushare: reconnected to the daemon at ${h.socket}; following task [0-9a-f]{12} again\\n$`));
  });
});

describe('a daemon that stops answering', () => {
  it('is named after --timeout by a plain request, and by a silent stream through its keepalive', async () => {
    h = new Harness();
    await h.start();
    const id = await h.detach(['--gpus', '0', '--', 'sh', '-c', 'echo ready; sleep 30']);
    await h.waitFor(id, (t) => t.state === 'running');
    const follow = h.cli(['logs', '-f', id, '--timeout', '0.5']);
    let followed = '';
    follow.child.stdout?.on('data', (b: Buffer) => (followed += b.toString()));
    while (!followed.includes('ready')) await sleep(20); // its stream is open: now it falls silent
    stopped = daemonPid();
    process.kill(stopped, 'SIGSTOP');
    const t0 = Date.now();
    const ps = await h.run(['ps', '--timeout', '0.5']);
    expect(ps.status).toBe(1);
    expect(ps.stderr).toContain(`the daemon at ${h.socket} did not answer GET /v1/tasks within 0.5 s`);
    expect(Date.now() - t0).toBeLessThan(5000);
    const logs = await follow.done;
    expect(logs.status).toBe(1);
    expect(logs.stderr).toMatch(/did not answer GET \/v1\/gpus within 0\.5 s .*\(a keepalive while the stream was silent\)/);
  });
});

describe('run exit statuses', () => {
  it('126 for a command that cannot be executed, 127 for one not found, the task\'s own code otherwise; --host before run', async () => {
    h = new Harness();
    await h.start();
    const script = join(h.dir, 'not-executable.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n');
    chmodSync(script, 0o644);
    const cannot = await h.run(['run', '--gpus', '0', '--', script]);
    expect(cannot.status).toBe(126);
    expect(cannot.stderr).toMatch(/cannot run ".*not-executable\.sh": permission denied \(EACCES\)/);
    expect((await h.run(['run', '--gpus', '0', '--', 'no-such-program-gpushare'])).status).toBe(127);
    expect((await h.run(['run', '--gpus', '0', '--', 'sh', '-c', 'exit 125'])).status).toBe(125);
    // And --host before the command reaches the daemon (over GPUSHARE_HOST).
    const r = await h.run(['--host', h.socket, '--timeout', '5', 'run', '--gpus', '0', '--', 'echo', 'hi'], { GPUSHARE_HOST: '/nonexistent/env.sock' });
    expect(r).toMatchObject({ status: 0, stdout: 'hi\n' });
  });
});
