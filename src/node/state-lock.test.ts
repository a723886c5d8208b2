import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isGsError } from '../domain/index.js';
import { heldBy, LOCK_FILE, lockStateDir, readHolder } from './state-lock.js';

describe('lockStateDir', () => {
  const dirs: string[] = [];
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'gpushare-lock-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('refuses a second holder (even in the same process: flock is per open file), naming the first', () => {
    const d = dir();
    const first = lockStateDir(d, ['/run/a.sock'], Date.UTC(2026, 0, 2, 3, 4, 5), 4242);
    let err: unknown;
    try {
      lockStateDir(d, ['/run/b.sock']);
    } catch (e) {
      err = e;
    }
    expect(isGsError(err) && err.code).toBe('GS_ERR_CONFLICT');
    expect((err as Error).message).toBe(`another gpushare daemon (pid 4242, listening on /run/a.sock, since 2026-01-02T03:04:05.000Z) already uses the state directory ${d}; stop it first, or start this one with another --state-dir`);
    first.release();
    const second = lockStateDir(d, ['/run/b.sock']);
    second.release();
  });

  it('rewrites the holder once the addresses are known, shorter text included', () => {
    const d = dir();
    const lock = lockStateDir(d, ['/a/very/long/socket/path/that/is/replaced.sock', 'localhost:0'], 1000, 7);
    lock.describe(['http://localhost:7070']);
    expect(readHolder(join(d, LOCK_FILE))).toEqual({ pid: 7, addresses: ['http://localhost:7070'], since: 1000 });
    expect(readFileSync(join(d, LOCK_FILE), 'utf8').split('\n').length).toBe(2);
    lock.release();
    lock.release(); // twice is harmless
  });

  it('says so when the holder has not written its name yet', () => {
    expect(heldBy('/s', null).message).toMatch(/it is starting: its pid is not written yet\) already uses the state directory \/s/);
    expect(readHolder('/nonexistent/daemon.lock')).toBeNull();
  });
});
