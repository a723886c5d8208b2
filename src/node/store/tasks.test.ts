import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SliceRequest } from '../../domain/index.js';
import { openDatabase } from './db.js';
import { TaskStore, type NewTask, type TaskUpdate } from './tasks.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function newTask(): NewTask {
  n += 1;
  const id = n.toString(16).padStart(12, '0');
  return { id, command: ['true'], env: {}, cwd: '/', request: { gpus: 0 } as unknown as SliceRequest, priority: 500, tenant: null, submittedAt: n, stdoutPath: `/s/${id}/o`, stderrPath: `/s/${id}/e`, regionPath: `/s/${id}/r` };
}

/** The live list as a fresh store reads it from the database (no cache). */
const fromDisk = (path: string): unknown[] => {
  const db = openDatabase(path);
  try {
    return new TaskStore(db).list();
  } finally {
    db.close();
  }
};

describe('TaskStore live list', () => {
  it('follows every write without rereading the others: same objects for unchanged tasks, arrival order, ended ones gone', () => {
    const path = join(dir, 'live.db');
    const db = openDatabase(path);
    const store = new TaskStore(db);
    const [a, b, c] = [store.create(newTask()), store.create(newTask()), store.create(newTask())];
    const first = store.list();
    expect(first.map((t) => t.id)).toEqual([a.id, b.id, c.id]);
    const v0 = store.liveVersion();
    store.update(b.id, { state: 'running', pid: 42 });
    expect(store.liveVersion()).toBeGreaterThan(v0);
    const second = store.list();
    expect(second.map((t) => [t.id, t.state])).toEqual([
      [a.id, 'queued'],
      [b.id, 'running'],
      [c.id, 'queued'],
    ]);
    expect(second[0]).toBe(first[0]); // untouched: the same object, so callers may cache by identity
    expect(second[1]).not.toBe(first[1]);
    store.update(a.id, { state: 'exited', exitCode: 0 });
    const d = store.create(newTask());
    expect(store.list().map((t) => t.id)).toEqual([b.id, c.id, d.id]);
    expect(store.list()).toEqual(fromDisk(path));
    db.close();
  });

  it('reads the list again after a transaction rolls back', () => {
    const path = join(dir, 'rollback.db');
    const db = openDatabase(path);
    const store = new TaskStore(db);
    const a = store.create(newTask());
    store.list();
    expect(() =>
      store.transaction(() => {
        store.update(a.id, { state: 'killed' });
        store.create(newTask());
        throw new Error('refused');
      }),
    ).toThrow('refused');
    expect(store.list().map((t) => [t.id, t.state])).toEqual([[a.id, 'queued']]);
    expect(store.list()).toEqual(fromDisk(path));
    db.close();
  });
});

describe('TaskStore create', () => {
  it('returns the record a reread gives, without rereading (seq, defaults, JSON columns)', () => {
    const db = openDatabase(join(dir, 'create.db'));
    const store = new TaskStore(db);
    store.list(); // the live cache, which create() puts its record in
    for (const extra of [{}, { env: { A: '1', LD_X: 'y' }, tenant: 'team-a', command: ['sh', '-c', 'echo "x"'], request: { gpus: 1, memoryBytes: 5 } as unknown as SliceRequest }]) {
      const created = store.create({ ...newTask(), ...extra });
      expect(created).toEqual(store.get(created.id));
      expect(store.list().find((x) => x.id === created.id)).toBe(created);
    }
    db.close();
  });
});

describe('TaskStore update of a live task', () => {
  it('returns the record a reread gives, without rereading (every field an update may set)', () => {
    const path = join(dir, 'update.db');
    const db = openDatabase(path);
    const store = new TaskStore(db);
    const t = store.create(newTask());
    store.list(); // the live cache is what update() applies changes to
    const gpu = { index: 0, uuid: 'GPU-1', memoryBytes: 1024, computeMilli: 300 };
    const steps: TaskUpdate[] = [
      { state: 'starting', gpus: [gpu], smRanges: [{ uuid: 'GPU-1', offset: 0, count: 8 }], computeLimitPercent: 30, startedAt: 5, message: 'running without MPS' },
      { state: 'running', pid: 42, pidStartTime: 7 },
      { killRequested: true, killSignal: 'SIGTERM', killDeadline: 99 },
      { adopted: true, autoResume: true, preemptedBy: 'abc', suspendedAt: 8, suspensions: 2, resumeGpus: [gpu] },
      { state: 'running', gpus: null, smRanges: null, killRequested: false, adopted: false, autoResume: false, message: null, peakMemoryBytes: 12 },
    ];
    for (const change of steps) {
      const returned = store.update(t.id, change);
      expect(returned).toEqual(store.get(t.id));
      expect(store.list().find((x) => x.id === t.id)).toBe(returned);
    }
    expect(store.timedActions(t.id)).toEqual({ killSignal: 'SIGTERM', killDeadline: 99, resumeGpus: [gpu] });
    db.close();
  });
});

describe('TaskStore transactions', () => {
  it('runs after-commit work once the outermost transaction commits, and never for a part that rolled back', () => {
    const db = openDatabase(join(dir, 'hooks.db'));
    const store = new TaskStore(db);
    const t = store.create(newTask());
    const seen: string[] = [];
    store.afterCommit(() => seen.push('outside: at once'));
    expect(seen).toEqual(['outside: at once']);
    store.transaction(() => {
      store.update(t.id, { message: 'one' });
      store.afterCommit(() => seen.push(`outer sees ${fromDisk(join(dir, 'hooks.db')).length === 1 ? (fromDisk(join(dir, 'hooks.db'))[0] as { message: string }).message : '?'}`));
      expect(() =>
        store.transaction(() => {
          store.update(t.id, { message: 'two' });
          store.afterCommit(() => seen.push('rolled back'));
          throw new Error('no');
        }),
      ).toThrow('no');
      store.transaction(() => store.afterCommit(() => seen.push('inner kept')));
      expect(seen).toEqual(['outside: at once']); // nothing before the outermost commits
    });
    // After the commit: another connection reads what the hook was promised.
    expect(seen).toEqual(['outside: at once', 'outer sees one', 'inner kept']);
    expect(store.get(t.id).message).toBe('one');
    db.close();
  });

  it('a hook that throws is reported and the others still run, in order; the transaction that committed does not throw', () => {
    const db = openDatabase(join(dir, 'hooks2.db'));
    const store = new TaskStore(db);
    const t = store.create(newTask());
    const seen: string[] = [];
    const errors: string[] = [];
    store.onAfterCommitError = (err) => errors.push((err as Error).message);
    store.transaction(() => {
      store.update(t.id, { message: 'x' });
      store.afterCommit(() => seen.push('first'));
      store.afterCommit(() => {
        throw new Error('boom');
      });
      // A hook that commits on its own: what it adds runs after the hooks already waiting.
      store.afterCommit(() => store.transaction(() => store.afterCommit(() => seen.push('added by a hook'))));
      store.afterCommit(() => seen.push('last'));
    });
    expect(seen).toEqual(['first', 'last', 'added by a hook']);
    expect(errors).toEqual(['boom']);
    db.close();
  });
});
