/**
 * WAL checkpoints off the event loop. A checkpoint copies the WAL into the database file and
 * fsyncs it; run by the daemon's own connection (SQLite's default, every 1000 pages), that
 * fsync stalls every request behind it for as long as the disk takes: on a busy disk, tens to
 * hundreds of ms (bench/api.bench.ts). A worker thread with its own connection checkpoints
 * instead, once a second; the daemon's connection keeps a far larger automatic threshold only
 * as a backstop should the worker die. Commits themselves never fsync (WAL, synchronous=NORMAL).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Db } from './db.js';

const require = createRequire(import.meta.url);

// CommonJS, evaluated in the worker: better-sqlite3 is loaded by its resolved path.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
// The checkpointing connection's own setting decides whether a checkpoint fsyncs.
db.pragma('synchronous = ' + workerData.synchronous);
parentPort.postMessage({ ready: true, synchronous: db.pragma('synchronous', { simple: true }) });
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
};
const timer = setInterval(checkpoint, workerData.everyMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.postMessage({ closed: true });
});
`;

/** Pages of WAL after which the daemon's own connection checkpoints anyway (about 200 MiB). */
const BACKSTOP_PAGES = 50_000;

export interface Checkpointer {
  stop(): Promise<void>;
  /** The worker's connection is open: its synchronous setting (0 OFF, 1 NORMAL, as SQLite numbers them). */
  readonly ready: Promise<{ synchronous: number }>;
}

export interface CheckpointerOptions {
  everyMs?: number;
  onError?: (message: string) => void;
  /**
   * The checkpoints' durability: NORMAL (the default) fsyncs the WAL and the database at each
   * checkpoint, as the task store needs; OFF never does, for a store whose loss on a power
   * cut is acceptable (the history, which the daemon's own connection writes unsynchronized).
   */
  synchronous?: 'NORMAL' | 'OFF';
}

export function startCheckpointer(db: Db, path: string, options: CheckpointerOptions = {}): Checkpointer {
  const synchronous = options.synchronous ?? 'NORMAL';
  if (synchronous !== 'NORMAL' && synchronous !== 'OFF') throw new Error(`checkpointer: synchronous must be NORMAL or OFF, not ${String(synchronous)}`);
  db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  const worker = new Worker(WORKER, { eval: true, workerData: { module: require.resolve('better-sqlite3'), path, everyMs: options.everyMs ?? 1000, synchronous } });
  worker.unref();
  let stopped: Promise<void> | null = null;
  let onReady: (r: { synchronous: number }) => void = () => {};
  const ready = new Promise<{ synchronous: number }>((resolve) => (onReady = resolve));
  worker.on('message', (m: { error?: string; ready?: boolean; synchronous?: number }) => {
    if (m.error) options.onError?.(m.error);
    if (m.ready) onReady({ synchronous: m.synchronous ?? -1 });
  });
  worker.on('error', (err) => options.onError?.(err.message));
  return {
    ready,
    stop(): Promise<void> {
      stopped ??= new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.on('message', (m: { closed?: boolean }) => {
          if (m.closed) void worker.terminate();
        });
        worker.postMessage('stop');
        // A worker that cannot close its connection in time is ended; the daemon's close checkpoints.
        setTimeout(() => void worker.terminate(), 5000).unref();
      });
      return stopped;
    },
  };
}
