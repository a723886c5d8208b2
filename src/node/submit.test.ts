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
import { MAX_STARTS_PER_PASS, paced } from './queue.js';
import type { Plan, PlanAction } from './planner.js';
import type { Task } from '../contract/task.js';

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

/** Until every task has ended (the spawner makes their directories meanwhile; the cleanup must not race it). */
async function allEnded(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (store.list().length > 0) {
    if (Date.now() > deadline) throw new Error('tasks still live');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('submissions of one turn, committed together (submitSoon)', () => {
  it('refuses bad input at once, stores the rest in one commit in arrival order, and answers only once committed', async () => {
    const before = store.list(true).length;
    const commits: number[] = [];
    const spy = store.transaction.bind(store);
    let depth = 0;
    store.transaction = <T>(fn: () => T): T => {
      depth += 1;
      try {
        const out = spy(fn);
        if (depth === 1) commits.push(1);
        return out;
      } finally {
        depth -= 1;
      }
    };
    try {
      const first = daemon.submitSoon({ command: ['true'], cwd: '/', memory: '1Gi' }, principal);
      expect(() => daemon.submitSoon({ command: ['true'], cwd: '/', memory: '900Gi' }, principal)).toThrow(/GiB|memory|fit/i);
      const more = Array.from({ length: 4 }, () => daemon.submitSoon({ command: ['true'], cwd: '/', memory: '1Gi' }, principal));
      // Nothing is stored before the turn ends: the callers are not answered yet either.
      expect(store.list(true).length).toBe(before);
      const tasks = await Promise.all([first, ...more]);
      expect(commits).toEqual([1]);
      expect(tasks.every((t) => t.state === 'queued')).toBe(true);
      const seqs = tasks.map((t) => t.seq);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
      for (const t of tasks) expect(store.get(t.id)).toMatchObject({ id: t.id, seq: t.seq });
      expect(store.list(true).length).toBe(before + 5);
    } finally {
      store.transaction = spy;
    }
    await allEnded();
  });

  it('a submission whose write fails is refused alone; the others of its turn are stored', async () => {
    const audit = store.audit.bind(store);
    let n = 0;
    store.audit = (at, entry) => {
      n += 1;
      if (n === 2) throw new Error('disk said no');
      audit(at, entry);
    };
    try {
      const results = await Promise.allSettled(Array.from({ length: 3 }, () => daemon.submitSoon({ command: ['true'], cwd: '/', memory: '1Gi' }, principal)));
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(results[1]?.status === 'rejected' && String(results[1].reason)).toMatch(/disk said no/);
      for (const r of results) if (r.status === 'fulfilled') expect(store.get(r.value.id).state).toBeDefined();
      // The refused one left no row: the stored ones are all there is of this turn.
      const stored = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.id] : []));
      expect(store.events(0, 100_000).filter((e) => e.type === 'task.submitted' && stored.includes(e.taskId ?? '')).length).toBe(2);
    } finally {
      store.audit = audit;
    }
    await allEnded();
  });
});

describe('a burst of starts, paced (queue.ts MAX_STARTS_PER_PASS)', () => {
  it('one pass starts at most MAX_STARTS_PER_PASS tasks; the next turn plans again and starts the rest, in submission order', async () => {
    await allEnded();
    const count = MAX_STARTS_PER_PASS * 2 + 6;
    const ids = Array.from({ length: count }, () => daemon.submit({ command: ['true'], cwd: '/', memory: '512Mi' }, principal).id);
    // The pass asked for by the submissions runs in this turn's check phase, before this callback.
    await new Promise((r) => setImmediate(r));
    const leftQueued = (): number => ids.filter((id) => store.get(id).state === 'queued').length;
    expect(leftQueued()).toBe(count - MAX_STARTS_PER_PASS);
    await new Promise((r) => setImmediate(r));
    expect(leftQueued()).toBe(count - 2 * MAX_STARTS_PER_PASS);
    const deadline = Date.now() + 20_000;
    while (store.events(0, 100_000).filter((e) => e.type === 'task.started' && ids.includes(e.taskId ?? '')).length < count) {
      if (Date.now() > deadline) throw new Error('not every task started');
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(store.events(0, 100_000).filter((e) => e.type === 'task.started' && ids.includes(e.taskId ?? '')).map((e) => e.taskId)).toEqual(ids);
    await allEnded();
  });

  it('a plan within the bound is performed whole; past it, only its first starts, and another pass is asked for', () => {
    const task = (id: string): Task => ({ id }) as Task;
    const start = (id: string): PlanAction => ({ kind: 'start', task: task(id), gpus: [], smRanges: null }) as unknown as PlanAction;
    const wait = (id: string): PlanAction => ({ kind: 'wait', task: task(id), reason: { kind: 'noRoom' } }) as unknown as PlanAction;
    let asked = 0;
    const small: Plan = { actions: [start('a'), wait('b')], blocked: null };
    expect(paced(small, () => (asked += 1))).toBe(small);
    expect(asked).toBe(0);
    const starts = Array.from({ length: MAX_STARTS_PER_PASS + 3 }, (_, i) => start(`s${i}`));
    const big: Plan = { actions: [wait('w0'), ...starts.slice(0, 10), wait('w1'), ...starts.slice(10)], blocked: task('w1') };
    const now = paced(big, () => (asked += 1));
    expect(asked).toBe(1);
    expect(now.actions).toEqual(starts.slice(0, MAX_STARTS_PER_PASS));
    expect(now.blocked).toBe(big.blocked);
  });
});
