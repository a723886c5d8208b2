import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Principal } from '../contract/principal.js';
import { OpenRemoteSessionSchema } from '../contract/remote.js';
import type { Task } from '../contract/task.js';
import { RemoteSessions, workerTask, type SessionDaemon } from './sessions.js';

describe('a remote session as a task', () => {
  it('runs the worker on one GPU with the slice, the key only in a file named on its command line', () => {
    const body = workerTask({ memory: '8Gi', compute: '30', priority: 'high', connectTimeoutSeconds: 5 }, '/opt/gs/gpushare-remote-worker', '/run/k/abc.key');
    expect(body.command).toEqual(['/opt/gs/gpushare-remote-worker', '--listen', '0.0.0.0:0', '--key-file', '/run/k/abc.key', '--accept-timeout-ms', '5000', '--idle-timeout-ms', '60000']);
    expect(body).not.toHaveProperty('env');
    expect(body).toMatchObject({ gpus: 1, memory: '8Gi', compute: '30', priority: 'high' });
    expect(body).not.toHaveProperty('tenant');
    expect(workerTask({ port: 7000, tenant: 'team-a' }, '/w', '/k').command[2]).toBe('0.0.0.0:7000');
    expect(workerTask({}, '/w', '/k', true).command).toEqual(['/w', '--listen', '0.0.0.0:0', '--key-file', '/k', '--tls', '--accept-timeout-ms', '60000', '--idle-timeout-ms', '60000']);
  });

  it.each([
    ['two GPUs', { gpus: 2 }],
    ['a port out of range', { port: 70000 }],
    ['a fractional port', { port: 1.5 }],
    ['an unknown field', { command: ['sh'] }],
    ['a zero connect timeout', { connectTimeoutSeconds: 0 }],
  ])('refuses a body with %s', (_what, body) => {
    expect(OpenRemoteSessionSchema.safeParse(body).success).toBe(false);
  });
});

/** A daemon whose every task is already running and has printed `line`; records the key file's state at submission. */
function fakeDaemon(dir: string, line: string, user: { uid: number; gid: number } | null) {
  const seen: { keyFile: string; uid: number; mode: number; dirMode: number; command: readonly string[] }[] = [];
  const stdoutPath = join(dir, 'stdout.log');
  writeFileSync(stdoutPath, line);
  const task = { id: 't1', state: 'running', stdoutPath, stderrPath: join(dir, 'stderr.log') } as unknown as Task;
  const daemon: SessionDaemon = {
    submitSoon: (input) => {
      const keyFile = input.command[input.command.indexOf('--key-file') + 1] ?? '';
      const st = statSync(keyFile);
      seen.push({ keyFile, uid: st.uid, mode: st.mode & 0o777, dirMode: statSync(dirname(keyFile)).mode & 0o777, command: input.command });
      return Promise.resolve(task);
    },
    get: () => task,
    taskUser: () => user,
  };
  return { daemon, seen };
}

const principal = { actor: 'test', role: 'admin', tenant: null } as unknown as Principal;
const FP = '3c'.repeat(32);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('opening a session', () => {
  it("answers a TLS session's pin from its worker's line; TLS by default only when the request came over TLS", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gs-sessions-'));
    dirs.push(dir);
    const { daemon, seen } = fakeDaemon(dir, `gpushare-remote-worker listening 4000 tls-sha256 ${FP}\n`, null);
    const sessions = new RemoteSessions(daemon, '/w', 5);
    const tls = await sessions.open({}, principal, true);
    expect(tls).toMatchObject({ port: 4000, tls: { sha256: FP } });
    expect(seen[0]?.command).toContain('--tls');
    const plain = await sessions.open({}, principal, false);
    expect(plain.tls).toBeNull();
    expect(seen[1]?.command).not.toContain('--tls');
    expect((await sessions.open({ tls: false }, principal, true)).tls).toBeNull();
    expect((await sessions.open({ tls: true }, principal, false)).tls).toEqual({ sha256: FP });
    sessions.close();
  });

  it.skipIf(process.getuid?.() !== 0)("gives the key's file to the user the worker runs as (sandbox users), in a directory it can reach but not list", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gs-sessions-'));
    dirs.push(dir);
    const { daemon, seen } = fakeDaemon(dir, 'gpushare-remote-worker listening 4000\n', { uid: 1900000123, gid: 1900000123 });
    const sessions = new RemoteSessions(daemon, '/w', 5);
    await sessions.open({}, principal);
    expect(seen[0]).toMatchObject({ uid: 1900000123, mode: 0o600, dirMode: 0o711 });
    sessions.close();
    const own = fakeDaemon(dir, 'gpushare-remote-worker listening 4000\n', null);
    const mine = new RemoteSessions(own.daemon, '/w', 5);
    await mine.open({}, principal);
    expect(own.seen[0]).toMatchObject({ uid: process.getuid?.(), mode: 0o600, dirMode: 0o700 });
    mine.close();
  });
});
