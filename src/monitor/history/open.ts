/** Opening the daemon's history store, and subscribing it to the samples. */
import { existsSync, renameSync } from 'node:fs';
import type { SampleSource } from '../../contract/monitor.js';
import type { Retention } from './rollup.js';
import { HistoryStore } from './store.js';

/**
 * The store at `path`; one that cannot be opened (damaged, or from a newer gpushare) is moved
 * aside to `<path>.unreadable-<ms>` and a new one started: history is worth less than the daemon's start.
 */
export function openHistoryStore(path: string, now: number, retention: Retention, onProblem: (message: string) => void): HistoryStore {
  try {
    return new HistoryStore(path, { retention });
  } catch (err) {
    const aside = `${path}.unreadable-${now}`;
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    onProblem(`the history database could not be opened (${(err as Error).message}); moved to ${aside}, starting a new one`);
    return new HistoryStore(path, { retention });
  }
}

/** Records every sample `source` hands out into `store`; returns the unsubscribe. */
export function recordHistory(source: SampleSource, store: HistoryStore): () => void {
  return source.subscribe((sample) => store.record(sample));
}
