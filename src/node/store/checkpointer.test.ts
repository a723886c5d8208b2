import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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

  it('refuses a synchronous setting it does not know, starting nothing', () => {
    const path = join(dir, 'bad.sqlite');
    const db = openDatabase(path);
    expect(() => startCheckpointer(db, path, { synchronous: 'FULL' as never })).toThrow(/synchronous must be NORMAL or OFF, not FULL/);
    db.close();
  });
});
