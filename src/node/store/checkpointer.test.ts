import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fleetSample } from '../../monitor/history/fixtures.js';
import { HistoryStore } from '../../monitor/history/store.js';
import { startCheckpointer } from './checkpointer.js';
import { openDatabase } from './db.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('WAL checkpointer', () => {
  it('copies the WAL into the database from its worker, and stops cleanly', async () => {
    const path = join(dir, 'db');
    const db = openDatabase(path);
    const ckpt = startCheckpointer(db, path, { everyMs: 50 });
    const before = statSync(path).size;
    const insert = db.prepare('INSERT INTO events (at, type, task_id, data) VALUES (?, ?, NULL, ?)');
    const blob = 'x'.repeat(2000);
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run(i, 'test', blob);
    })();
    // ~4 MB committed to the WAL: the daemon's connection would not checkpoint it (its threshold is 50,000 pages).
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(4_000_000);
    expect(statSync(path).size).toBe(before);
    const deadline = Date.now() + 10_000;
    while (statSync(path).size < 4_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(statSync(path).size).toBeGreaterThan(4_000_000);
    expect((await ckpt.ready).synchronous).toBe(1); // NORMAL: the task store's checkpoints fsync
    await ckpt.stop();
    await ckpt.stop(); // idempotent
    expect(db.prepare('SELECT count(*) FROM events').pluck().get()).toBe(2000);
    db.close();
  });
});

describe("the history store's checkpoints (HistoryStore.checkpointsBy)", () => {
  it('go to the worker: sample commits past 1,000 pages of WAL no longer copy it into the database on the event loop', async () => {
    const path = join(dir, 'history.sqlite');
    const store = new HistoryStore(path);
    // Not due during the writes: what reaches the database file before stop() was its own connection's doing.
    // synchronous OFF, as serve.ts starts it: the history's checkpoints never fsync.
    const ckpt = store.checkpointsBy((db, file) => startCheckpointer(db, file, { everyMs: 60_000, synchronous: 'OFF' }));
    expect((await ckpt.ready).synchronous).toBe(0);
    const before = statSync(path).size;
    // 2,000 slices a sample: thousands of series, over 4 MB (1,000 pages) of WAL in these samples.
    for (let i = 0; i < 30; i++) {
      store.record(fleetSample(1_000_000 + i * 1000, 8, 2000));
      store.flush();
    }
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(4_200_000);
    // SQLite's own threshold (1,000 pages) would have checkpointed on this connection by now.
    expect(statSync(path).size).toBe(before);
    store.close();
    // The worker's last checkpoint, as the daemon stops.
    await ckpt.stop();
    expect(statSync(path).size).toBeGreaterThan(before + 1_000_000);
  });

  it('refuses a synchronous setting it does not know, starting nothing', () => {
    const path = join(dir, 'bad.sqlite');
    const db = openDatabase(path);
    expect(() => startCheckpointer(db, path, { synchronous: 'FULL' as never })).toThrow(/synchronous must be NORMAL or OFF, not FULL/);
    db.close();
  });
});
