/**
 * The history store: every sample's series (series.ts) into SQLite, raw for the last hour, then
 * (min, mean, max) per minute for a week and per hour for 90 days (rollup.ts does the arithmetic).
 *
 * It keeps its own file, `history.sqlite` beside the daemon's `gpushare.db`, not tables in it:
 * one writer's transaction holds SQLite's write lock and grows the WAL that the task store's
 * commits and checkpoints go through, and history writes ~200 rows a second on a full machine;
 * apart, task commits never wait behind it, its WAL is checkpointed on its own, and a damaged or
 * deleted history file costs history only (the daemon starts a new one).
 *
 * Writes: one transaction per sample, from the SampleHub's listener (the sampler's tick), never
 * from an API request. Pruning runs at each minute's close for the series written lately and
 * over every series at each hour's close. On disk, for G GPUs, S slices (tasks) live at a time
 * and T tenants, with one sample a second: rows <= (4G + 2S + 2T + 1) x (3,780 raw + 10,080
 * minute + 2,160 hour), plus one minute and one hour row per task that ends inside a bucket
 * (docs/architecture.md gives the bytes; store.test.ts checks the row bound).
 */
import Database from 'better-sqlite3';
import type { HistorySeries, MonitorSample } from '../../contract/monitor.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { DEFAULT_RETENTION, HOUR_MS, RAW_GRACE_MS, MINUTE_MS, RESOLUTION_MS, RollupBuilder, bucketOf, chooseResolution, effectiveStepMs, toPoints, type BucketRow, type Resolution, type Retention, type StoredBucket } from './rollup.js';
import { gpuSubject, QUEUE_SUBJECT, sampleValues, taskSubject, tenantSubject, type SubjectKey } from './series.js';
import type { HistoryPoint } from '../../contract/monitor.js';
import type { HistorySource, HistorySubject } from '../../contract/history.js';

const SCHEMA_VERSION = 1;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, name TEXT NOT NULL, subject TEXT NOT NULL, tenant TEXT, UNIQUE (name, subject));
CREATE TABLE IF NOT EXISTS raw (series INTEGER NOT NULL, t INTEGER NOT NULL, v REAL NOT NULL, PRIMARY KEY (series, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minute (series INTEGER NOT NULL, t INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (series, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hour (series INTEGER NOT NULL, t INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (series, t)) WITHOUT ROWID;
`;

/** A series written within this long of a minute's close is pruned then; the rest at the hour's sweep. */
const ACTIVE_MARGIN_MS = 5 * MINUTE_MS;
/** The most writes (a row, a bucket, or a series' prune) per transaction and per turn of the event loop (record()). */
export const RECORD_CHUNK = 128;

export interface HistoryQuery {
  readonly series: HistorySeries;
  readonly subject: SubjectKey;
  /** Unix ms, inclusive. */
  readonly from: number;
  /** Unix ms, exclusive. */
  readonly to: number;
  /** Asked width of a point; 0: the finest stored. */
  readonly stepMs: number;
  readonly now: number;
}

export interface HistoryAnswer {
  readonly resolution: Resolution;
  readonly stepMs: number;
  readonly points: HistoryPoint[];
}

interface SeriesRow {
  readonly id: number;
  readonly tenant: string | null;
}

export class HistoryStore implements HistorySource {
  private readonly db: Database.Database;
  private readonly builder = new RollupBuilder();
  private readonly ids = new Map<string, SeriesRow>();
  /** When each series was last written (since this start): who the per-minute prune looks at. */
  private readonly lastWritten = new Map<number, number>();
  private readonly stmt: ReturnType<HistoryStore['prepare']>;
  private retention: Retention;
  private lastHour = -Infinity;

  /** Opens (creating) the store at `path`; ":memory:" for tests. */
  constructor(
    private readonly path: string,
    options: { readonly retention?: Retention } = {},
  ) {
    this.retention = options.retention ?? DEFAULT_RETENTION;
    try {
      this.db = new Database(path);
    } catch (cause) {
      throw new GsError(ErrorCodes.invalidArgument, `cannot open the history database ${path}: ${(cause as Error).message}`, { cause });
    }
    this.db.pragma('journal_mode = WAL');
    // History is rebuilt from nothing at worst; no fsync on the sampler's tick.
    this.db.pragma('synchronous = OFF');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      this.db.close();
      throw new GsError(ErrorCodes.conflict, `the history database ${path} is at schema version ${version}, newer than this gpushare knows (${SCHEMA_VERSION}); move it away or run a newer gpushare`);
    }
    this.db.exec(SCHEMA);
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    this.stmt = this.prepare();
    for (const r of this.db.prepare('SELECT id, name, subject, tenant FROM series').all() as { id: number; name: string; subject: string; tenant: string | null }[]) {
      this.ids.set(seriesKey(r.name, r.subject), { id: r.id, tenant: r.tenant });
    }
    this.recover();
  }

  private prepare() {
    const db = this.db;
    return {
      addSeries: db.prepare('INSERT INTO series (name, subject, tenant) VALUES (?, ?, ?)'),
      raw: db.prepare('INSERT OR REPLACE INTO raw (series, t, v) VALUES (?, ?, ?)'),
      minute: db.prepare('INSERT OR REPLACE INTO minute (series, t, min, max, sum, count) VALUES (?, ?, ?, ?, ?, ?)'),
      hour: db.prepare('INSERT OR REPLACE INTO hour (series, t, min, max, sum, count) VALUES (?, ?, ?, ?, ?, ?)'),
      readRaw: db.prepare('SELECT t, v FROM raw WHERE series = ? AND t >= ? AND t < ? ORDER BY t').raw(),
      readMinute: db.prepare('SELECT t, min, max, sum, count FROM minute WHERE series = ? AND t >= ? AND t < ? ORDER BY t').raw(),
      readHour: db.prepare('SELECT t, min, max, sum, count FROM hour WHERE series = ? AND t >= ? AND t < ? ORDER BY t').raw(),
      pruneRaw: db.prepare('DELETE FROM raw WHERE series = ? AND t < ?'),
      pruneMinute: db.prepare('DELETE FROM minute WHERE series = ? AND t < ?'),
      pruneHour: db.prepare('DELETE FROM hour WHERE series = ? AND t < ?'),
    };
  }

  /**
   * Rebuilds the open buckets after a restart from what is on disk: minutes not yet rolled up
   * come back from their raw rows, and the open hour from its closed minutes plus those.
   */
  private recover(): void {
    const newestMinute = this.db.prepare('SELECT max(t) FROM minute').pluck().get() as number | null;
    const rolledThrough = newestMinute === null ? -Infinity : newestMinute + MINUTE_MS;
    if (Number.isFinite(rolledThrough)) {
      const hourStart = bucketOf(rolledThrough, HOUR_MS);
      const rows = this.db.prepare('SELECT series, t, min, max, sum, count FROM minute WHERE t >= ? AND t < ? ORDER BY t').raw().all(hourStart, rolledThrough) as [number, number, number, number, number, number][];
      for (const [key, t, min, max, sum, count] of rows) this.builder.seedHour(key, t, { min, max, sum, count });
    }
    const raw = this.db.prepare('SELECT series, t, v FROM raw WHERE t >= ? ORDER BY t').raw().all(Number.isFinite(rolledThrough) ? rolledThrough : 0) as [number, number, number][];
    for (const [key, t, v] of raw) this.builder.add(key, t, v);
  }

  /**
   * Records one sample: its raw values, and whatever buckets its time closed. A sample of up to
   * RECORD_CHUNK writes is one transaction, done before this returns; a larger one (thousands of
   * live tasks, each a series) is written RECORD_CHUNK rows per transaction and per turn of the
   * event loop, in order, behind any sample still being written: in one go, a sample of 1,000
   * short tasks' slices held the daemon's event loop 14-175 ms every second, and the minute's
   * prune of their series about a second, on the 2-core development VM (docs/benchmarks.md,
   * session 24), and every request waited it out. Until its last chunk, a query may miss part of
   * that sample; a crash may leave part of it unwritten (history is rebuilt from nothing at worst).
   */
  record(sample: MonitorSample): void {
    const values = sampleValues(sample);
    const at = sample.at;
    this.writes.push(() => {
      const closed = this.builder.advance(at);
      return [
        ...closed.minutes.map((r) => () => this.writeBucket(this.stmt.minute, r)),
        ...closed.hours.map((r) => () => this.writeBucket(this.stmt.hour, r)),
        ...values.map((v) => () => {
          const id = this.idOf(v.series, v.subject, v.tenant);
          this.stmt.raw.run(id, at, v.value);
          this.builder.add(id, at, v.value);
          this.lastWritten.set(id, at);
        }),
        // After the values: the ids written lately include this sample's.
        ...(closed.minutes.length > 0 ? [() => this.prune(at, bucketOf(at, HOUR_MS) > this.lastHour)] : []),
      ];
    });
    if (this.writes.length === 1 && this.pending.length === 0) this.writeSome();
  }

  /** Samples not yet begun (each expands into its writes when its turn comes). */
  private readonly writes: (() => (() => void | (() => void)[])[])[] = [];
  /** The writes of the sample under way (a prune's expand into one per series). */
  private pending: (() => void | (() => void)[])[] = [];
  private writeTimer: NodeJS.Immediate | null = null;

  /** Up to RECORD_CHUNK writes in one transaction; the rest on the next turn. */
  private writeSome(limit = RECORD_CHUNK): void {
    this.writeTimer = null;
    this.db.transaction(() => {
      let done = 0;
      while (done < limit) {
        if (this.pending.length === 0) {
          const next = this.writes.shift();
          if (next === undefined) break;
          this.pending = next().reverse();
          continue;
        }
        const more = this.pending.pop()!();
        done += 1;
        if (Array.isArray(more)) for (let i = more.length - 1; i >= 0; i--) this.pending.push(more[i]!);
      }
    })();
    if (this.pending.length > 0 || this.writes.length > 0) this.writeTimer = setImmediate(() => this.writeSome());
  }

  /** Writes everything still queued now (close, and tests). */
  flush(): void {
    if (this.writeTimer !== null) clearImmediate(this.writeTimer);
    this.writeSome(Infinity);
  }

  private writeBucket(stmt: Database.Statement, r: BucketRow): void {
    stmt.run(r.key, r.t, r.agg.min, r.agg.max, r.agg.sum, r.agg.count);
  }

  private idOf(name: HistorySeries, subject: SubjectKey, tenant: string | null): number {
    const key = seriesKey(name, subject);
    const known = this.ids.get(key);
    if (known !== undefined) return known.id;
    const id = Number(this.stmt.addSeries.run(name, subject, tenant).lastInsertRowid);
    this.ids.set(key, { id, tenant });
    return id;
  }

  /** Drops rows past their retention: the series written lately each minute, every series (and the emptied ones) at `sweep`. */
  private prune(now: number, sweep: boolean): (() => void)[] {
    const r = this.retention;
    const ids = sweep ? [...this.ids.values()].map((s) => s.id) : [...this.lastWritten].filter(([, t]) => t >= now - r.rawMs - 2 * RAW_GRACE_MS - ACTIVE_MARGIN_MS).map(([id]) => id);
    // One write per series (its three deletes), in record()'s chunks; the sweep of emptied series after them all.
    const writes = ids.map((id) => () => {
      this.stmt.pruneRaw.run(id, now - r.rawMs - 2 * RAW_GRACE_MS);
      this.stmt.pruneMinute.run(id, now - r.minuteMs);
      this.stmt.pruneHour.run(id, now - r.hourMs);
    });
    if (sweep) {
      this.lastHour = bucketOf(now, HOUR_MS);
      writes.push(() => this.dropEmptied());
    }
    return writes;
  }

  /** Forgets the series with no rows left (and no open bucket). */
  private dropEmptied(): void {
    const gone = this.db.prepare('SELECT id, name, subject FROM series s WHERE NOT EXISTS (SELECT 1 FROM raw WHERE series = s.id) AND NOT EXISTS (SELECT 1 FROM minute WHERE series = s.id) AND NOT EXISTS (SELECT 1 FROM hour WHERE series = s.id)').all() as { id: number; name: string; subject: string }[];
    const drop = this.db.prepare('DELETE FROM series WHERE id = ?');
    for (const g of gone) {
      if (this.builder.open(g.id, 'hour') !== undefined) continue;
      drop.run(g.id);
      this.ids.delete(seriesKey(g.name, g.subject));
      this.lastWritten.delete(g.id);
    }
  }

  /**
   * A new retention (config reload): rows past it go at the next minute's close, every series'
   * at the next sweep, which a shorter setting brings forward to that close.
   */
  setRetention(retention: Retention): void {
    const shorter = retention.rawMs < this.retention.rawMs || retention.minuteMs < this.retention.minuteMs || retention.hourMs < this.retention.hourMs;
    this.retention = retention;
    if (shorter) this.lastHour = -Infinity;
  }

  /** Whether the store has ever recorded `series` for `subject`, and the tenant a task's series was filed under. */
  known(series: HistorySeries, subject: SubjectKey): { readonly tenant: string | null } | null {
    const row = this.ids.get(seriesKey(series, subject));
    return row === undefined ? null : { tenant: row.tenant };
  }

  /** A range of one series at the finest stored resolution that covers it (or `stepMs`, coarser, made on read). */
  query(q: HistoryQuery): HistoryAnswer {
    const resolution = chooseResolution(q.from, q.now, q.stepMs, this.retention);
    const stepMs = effectiveStepMs(resolution, q.stepMs);
    const row = this.ids.get(seriesKey(q.series, q.subject));
    if (row === undefined || q.to <= q.from) return { resolution, stepMs, points: [] };
    // Whole points only: the first starts at the step's boundary at or before `from`.
    const from = bucketOf(q.from, stepMs);
    // Raw at its own step, the common case (a live chart's last hour): each row is its point.
    if (resolution === 'raw' && stepMs === RESOLUTION_MS.raw) {
      const rows = this.stmt.readRaw.all(row.id, from, q.to) as [number, number][];
      return { resolution, stepMs, points: rows.map(([t, v]) => ({ t, min: v, mean: v, max: v })) };
    }
    const buckets = this.buckets(row.id, resolution, from, q.to);
    return { resolution, stepMs, points: toPoints(buckets, stepMs) };
  }

  private buckets(id: number, resolution: Resolution, from: number, to: number): StoredBucket[] {
    if (resolution === 'raw') {
      const rows = this.stmt.readRaw.all(id, from, to) as [number, number][];
      return rows.map(([t, v]) => ({ t, agg: { min: v, max: v, sum: v, count: 1 } }));
    }
    const stmt = resolution === 'minute' ? this.stmt.readMinute : this.stmt.readHour;
    const rows = stmt.all(id, from, to) as [number, number, number, number, number][];
    const out: StoredBucket[] = rows.map(([t, min, max, sum, count]) => ({ t, agg: { min, max, sum, count } }));
    // The open bucket is newer than its row (an open hour's row is as of the last minute's close).
    const open = this.builder.open(id, resolution);
    if (open !== undefined && open.t >= from && open.t < to) {
      const last = out.at(-1);
      if (last !== undefined && last.t === open.t) out[out.length - 1] = { t: open.t, agg: open.agg };
      else out.push({ t: open.t, agg: open.agg });
    }
    return out;
  }

  range(q: Parameters<HistorySource['range']>[0]): HistoryAnswer {
    return this.query({ ...q, subject: subjectKey(q.subject) });
  }

  taskTenant(task: string): string | null | undefined {
    return (this.known('slice_memory_used_bytes', taskSubject(task)) ?? this.known('slice_compute_share', taskSubject(task)))?.tenant;
  }

  /** Rows per table and the file's pages, for the bound's test and the benchmark. */
  size(): { readonly raw: number; readonly minute: number; readonly hour: number; readonly series: number; readonly bytes: number } {
    const count = (table: string): number => this.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    return { raw: count('raw'), minute: count('minute'), hour: count('hour'), series: count('series'), bytes: pages * pageSize };
  }

  close(): void {
    this.flush();
    this.db.close();
  }

  /**
   * Hands this store's WAL checkpoints to `start` (the daemon's checkpointer: a worker thread
   * with a connection of its own, src/node/store/checkpointer.ts), given this connection, whose
   * automatic threshold it raises to a backstop, and the file. Without it SQLite checkpoints
   * inside the commit that crosses 1,000 pages of WAL: a sample's write on the event loop,
   * copying 4 MB into the database file (1-15 ms per 500 pages on the 2-core development VM),
   * and with a few thousand live tasks' series that came every few seconds.
   */
  checkpointsBy<T>(start: (db: Database.Database, path: string) => T): T {
    return start(this.db, this.path);
  }
}

function subjectKey(s: HistorySubject): SubjectKey {
  if (s.gpu !== undefined) return gpuSubject(s.gpu);
  if (s.task !== undefined) return taskSubject(s.task);
  if (s.tenant !== undefined) return tenantSubject(s.tenant);
  return QUEUE_SUBJECT;
}

function seriesKey(name: string, subject: string): string {
  return `${name}\u0000${subject}`;
}
