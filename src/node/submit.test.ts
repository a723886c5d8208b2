import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { openBackend } from '../gpu/open.js';
import { Daemon } from './daemon.js';
import { findNativePaths } from './launcher.js';
import { openDatabase } from './store/db.js';
import { TaskStore } from './store/tasks.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-submit-'));
const { backend } = openBackend({ backend: 'simulated', simulate: '1xH100-80GB' });
const db = openDatabase(join(dir, 'db'));
const store = new TaskStore(db);
const daemon = new Daemon({ stateDir: dir, backend, store, logger: pino({ level: 'silent' }), native: findNativePaths(), policy: 'binpack', killGraceMs: 1000 });
daemon.start();
afterAll(() => {
  daemon.close();
  db.close();
  backend.close();
  rmSync(dir, { recursive: true, force: true });
});

const principal = { actor: 'test', role: 'admin' as const, tenant: null };

describe('submission', () => {
  it('answers with the task as stored, then one pass after the turn starts every task that fits, its files made beforehand', async () => {
    const ids = Array.from({ length: 5 }, () => daemon.submit({ command: ['true'], cwd: '/', memory: '1Gi' }, principal));
    for (const t of ids) expect(t).toMatchObject({ state: 'queued', waiting: null, pid: null });
    // Nothing was started while the submissions came in: the launch is off their path.
    expect(store.events(0, 1000).filter((e) => e.type === 'task.started')).toEqual([]);
    const deadline = Date.now() + 10_000;
    while (store.events(0, 1000).filter((e) => e.type === 'task.started').length < ids.length) {
      if (Date.now() > deadline) throw new Error('not every task started');
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const t of ids) expect(existsSync(t.stdoutPath) && existsSync(t.stderrPath)).toBe(true);
    // The five started in submission order.
    expect(store.events(0, 1000).filter((e) => e.type === 'task.started').map((e) => e.taskId)).toEqual(ids.map((t) => t.id));
  });
});
