import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCheckpointer } from '../../node/store/checkpointer.js';
import { fleetSample } from './fixtures.js';
import { HistoryStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-history-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
});
