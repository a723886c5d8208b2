import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskEvents } from './events.js';
import { faultAfter, GpuHealthBook, holdOf, type GpuFault, type GpuReading } from './gpu-health.js';
import { openDatabase, type Db } from './store/db.js';
import { TaskStore } from './store/tasks.js';

const alice = { actor: 'alice', role: 'admin' as const };
const U = 'GPU-aaaa';
const ok = (ecc: number | null = 0): GpuReading => ({ uuid: U, health: 'ok', eccUncorrected: ecc });
const lost: GpuReading = { uuid: U, health: 'lost', eccUncorrected: null };
const xid = (lostAt: number | null = null): GpuFault => ({ kind: 'xid', code: 79, at: 100, lostAt });
const ecc = (lostAt: number | null = null): GpuFault => ({ kind: 'ecc', code: 3, at: 100, lostAt });

describe('faultAfter: when a fault recovers by itself', () => {
  it.each([
    ['a reading no later than the fault says nothing (it may predate it)', xid(), lost, 100, null],
    ['an XID fault stays while the GPU answers', xid(), ok(), 200, null],
    ['the GPU seen lost after the fault: a reset under way', xid(), lost, 200, { kind: 'lost' }],
    ['a GPU missing from the list counts as lost', xid(), undefined, 200, { kind: 'lost' }],
    ['lost again while already seen lost: nothing new', xid(150), lost, 200, null],
    ['reachable again after lost: recovered by a reset', xid(150), ok(5), 200, { kind: 'recovered', how: 'reset' }],
    ['reachable as "unhealthy" (the sample marks it so) after lost: recovered', xid(150), { uuid: U, health: 'unhealthy', eccUncorrected: null }, 200, { kind: 'recovered', how: 'reset' }],
    ['an ECC fault with errors still counted stays', ecc(), ok(3), 200, null],
    ['an ECC fault whose count is unknown stays', ecc(), ok(null), 200, null],
    ['an ECC fault whose count is back to 0 recovers', ecc(), ok(0), 200, { kind: 'recovered', how: 'ecc' }],
    ['an XID fault does not recover on an ECC count of 0', xid(), ok(0), 200, null],
  ] as const)('%s', (_name, fault, reading, at, expected) => {
    expect(faultAfter(fault, reading, at)).toEqual(expected);
  });
});

describe('holdOf', () => {
  it('says the cordon first (an admin\'s word), else the fault, else nothing', () => {
    const cordon = { by: 'alice', at: 1, note: 'fan' };
    expect(holdOf({ cordoned: true, cordon, fault: xid() })).toEqual({ kind: 'cordoned', by: 'alice', note: 'fan' });
    expect(holdOf({ cordoned: false, cordon: null, fault: xid() })).toEqual({ kind: 'fault', fault: 'xid', code: 79 });
    expect(holdOf({ cordoned: false, cordon: null, fault: null })).toBeNull();
  });
});

describe('GpuHealthBook', () => {
  const dirs: string[] = [];
  const dbs: Db[] = [];
  afterEach(() => {
    for (const db of dbs.splice(0)) db.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const open = (dir: string, clock: { t: number }): { book: GpuHealthBook; store: TaskStore } => {
    const db = openDatabase(join(dir, 'db'));
    dbs.push(db);
    const store = new TaskStore(db);
    const now = (): number => clock.t;
    return { book: new GpuHealthBook(store, new TaskEvents(store, pino({ level: 'silent' }), now), now), store };
  };
  const fresh = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'gpushare-health-'));
    dirs.push(d);
    return d;
  };

  it('keeps cordons and faults across a restart, audits the admin\'s changes and records every change as an event', () => {
    const dir = fresh();
    const clock = { t: 1000 };
    const first = open(dir, clock);
    first.book.cordon(U, alice, 'fan');
    expect(first.book.markFault('GPU-bbbb', { kind: 'xid', code: 79, at: 1000 })).toBe(true);
    expect(first.book.markFault('GPU-bbbb', { kind: 'xid', code: 79, at: 1001 })).toBe(false); // the same fault again
    const again = open(dir, clock);
    expect(again.book.state(U)).toEqual({ cordoned: true, cordon: { by: 'alice', at: 1000, note: 'fan' }, fault: null });
    expect(again.book.state('GPU-bbbb')).toEqual({ cordoned: false, cordon: null, fault: { kind: 'xid', code: 79, at: 1000, lostAt: null } });
    expect([...again.book.all().keys()]).toEqual([U, 'GPU-bbbb']);
    expect(again.store.auditLog(0, 10).map((a) => [a.actor, a.action, a.target, a.detail])).toEqual([['alice', 'gpu.cordon', U, { note: 'fan' }]]);
    expect(again.store.events(0, 10).map((e) => [e.type, e.data])).toEqual([
      ['gpu.cordoned', { uuid: U, by: 'alice', note: 'fan' }],
      ['gpu.fault', { uuid: 'GPU-bbbb', kind: 'xid', code: 79 }],
    ]);
  });

  it('uncordon lifts the cordon and clears the fault; clearFault clears the fault alone; a GPU with neither has no row', () => {
    const clock = { t: 1000 };
    const { book, store } = open(fresh(), clock);
    book.cordon(U, alice, null);
    book.markFault(U, { kind: 'ecc', code: 2, at: 1000 });
    expect(book.clearFault(U, alice)).toMatchObject({ cordoned: true, fault: null });
    book.markFault(U, { kind: 'xid', code: 48, at: 1000 });
    const v = book.version();
    expect(book.uncordon(U, alice)).toEqual({ cordoned: false, cordon: null, fault: null });
    expect(book.version()).toBeGreaterThan(v);
    expect(store.gpuHealth.list()).toEqual([]);
    expect(store.auditLog(0, 10).map((a) => a.action)).toEqual(['gpu.cordon', 'gpu.clear-fault', 'gpu.uncordon']);
  });

  it('recovers a fault through a reset seen in two readings, and persists the half-seen reset', () => {
    const dir = fresh();
    const clock = { t: 1000 };
    const { book } = open(dir, clock);
    book.markFault(U, { kind: 'xid', code: 79, at: 1000 });
    book.observe([ok()], 1000); // the reading the fault came from: nothing
    book.observe([], 2000); // gone from the list: a reset under way
    expect(book.state(U).fault?.lostAt).toBe(2000);
    const after = open(dir, clock).book; // a daemon restart mid-reset remembers it
    after.observe([ok(0)], 3000);
    expect(after.state(U).fault).toBeNull();
    expect(after.all().size).toBe(0);
  });

  it('recovers an ECC fault once the uncorrectable count reads 0, and leaves a cordon alone', () => {
    const { book } = open(fresh(), { t: 1000 });
    book.cordon(U, alice, 'swap');
    book.markFault(U, { kind: 'ecc', code: 4, at: 1000 });
    book.observe([ok(4)], 2000);
    expect(book.state(U).fault).not.toBeNull();
    book.observe([ok(0)], 3000);
    expect(book.state(U)).toMatchObject({ cordoned: true, fault: null });
  });
});
