/**
 * Streaming bodies: a task's log files tailed as they grow, the daemon's event feed and the
 * monitor's samples. All stop when the client goes away; timers and subscriptions are owned
 * here and released on every path.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { MonitorSample, SampleSource } from '../contract/monitor.js';
import type { Daemon } from '../node/daemon.js';
import type { EventRecord } from '../node/store/tasks.js';

type StreamName = 'stdout' | 'stderr';

export interface LogSource {
  readonly name: StreamName;
  readonly path: string;
  /** Where to start reading (logs --tail); 0 if absent. */
  readonly offset?: number;
}

const POLL_MS = 50;
const CHUNK = 64 * 1024;

/**
 * Copies the files' bytes to a stream: raw bytes (`text`) or one JSON object per chunk
 * (`ndjson`, `{"stream":"stdout","data":"..."}`), which keeps stdout and stderr apart. With
 * `follow`, keeps reading as they grow until `ended()` and a last read found nothing new.
 */
export function logStream(sources: readonly LogSource[], format: 'text' | 'ndjson', follow: boolean, ended: () => boolean): PassThrough {
  const out = new PassThrough();
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const files = sources.map((s) => ({ ...s, offset: s.offset ?? 0, handle: null as FileHandle | null, decoder: new StringDecoder('utf8') }));
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (timer) clearTimeout(timer);
    void Promise.all(files.map((f) => f.handle?.close().catch(() => undefined)));
  };
  out.on('close', stop);

  const readNew = async (): Promise<boolean> => {
    let any = false;
    for (const f of files) {
      if (!f.handle) {
        try {
          f.handle = await open(f.path, 'r');
        } catch {
          continue; // not created yet: the task has not started
        }
      }
      const buf = Buffer.alloc(CHUNK);
      for (;;) {
        const { bytesRead } = await f.handle.read(buf, 0, CHUNK, f.offset);
        if (bytesRead === 0 || stopped) break;
        f.offset += bytesRead;
        any = true;
        const bytes = buf.subarray(0, bytesRead);
        if (format === 'text') out.write(Buffer.from(bytes));
        else {
          const data = f.decoder.write(bytes);
          if (data !== '') out.write(`${JSON.stringify({ stream: f.name, data })}\n`);
        }
      }
    }
    return any;
  };

  const tick = async (): Promise<void> => {
    try {
      // Read `ended` before reading: output written before the end is then always drained.
      const done = !follow || ended();
      const any = await readNew();
      if (stopped) return;
      if (done && !any) {
        stop();
        out.end();
        return;
      }
      timer = setTimeout(() => void tick(), any && !done ? 0 : POLL_MS);
    } catch (err) {
      stop();
      out.destroy(err as Error);
    }
  };
  void tick();
  return out;
}

/**
 * The event feed as NDJSON: everything after `since`, then new events as they happen. `tenant`
 * narrows the backlog (as Daemon.events does), `visible` each event (authorize.ts decides both).
 */
export function eventStream(daemon: Pick<Daemon, 'events' | 'onEvent'>, since: number, tenant: string | undefined, visible: (event: EventRecord) => boolean, shape: (event: EventRecord) => EventRecord = (e) => e): PassThrough {
  const out = new PassThrough();
  let last = since;
  const pending: EventRecord[] = [];
  let live = false;
  const write = (e: EventRecord): void => {
    if (e.seq <= last) return;
    last = e.seq;
    if (!visible(e)) return;
    out.write(`${JSON.stringify(shape(e))}\n`);
  };
  // Subscribe before reading the backlog so nothing falls between the two.
  const unsubscribe = daemon.onEvent((e) => (live ? write(e) : pending.push(e)));
  out.on('close', unsubscribe);
  for (;;) {
    const batch = daemon.events(last, 1000, tenant);
    batch.forEach(write);
    if (batch.length < 1000) break;
  }
  pending.forEach(write);
  live = true;
  return out;
}

/** Bytes a sample stream may have waiting for a slow reader before it skips samples (a few samples' worth). */
export const SAMPLE_STREAM_BACKLOG_BYTES = 256 * 1024;

/**
 * The monitor's samples as NDJSON: the newest at once (if any), then each new one, each line as
 * `line` renders it for the caller; `also` may subscribe to other lines for the same stream (it
 * gets the writer and returns its unsubscribe). A reader slower than the lines gets fewer, never
 * a growing buffer in the daemon: a line is skipped while more than SAMPLE_STREAM_BACKLOG_BYTES wait.
 */
export function sampleStream(source: SampleSource, line: (sample: MonitorSample) => string, also?: (write: (text: string) => void) => () => void): PassThrough {
  const out = new PassThrough();
  const write = (text: string): void => {
    if (out.writableLength > SAMPLE_STREAM_BACKLOG_BYTES) return;
    out.write(`${text}\n`);
  };
  const unsubscribe = source.subscribe((sample) => write(line(sample)));
  const unsubscribeAlso = also?.(write) ?? ((): void => {});
  out.on('close', () => {
    unsubscribe();
    unsubscribeAlso();
  });
  const newest = source.latest();
  if (newest !== null) write(line(newest));
  return out;
}
