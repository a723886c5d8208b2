/**
 * Everything the views show, kept current without polling the daemon in a loop: one NDJSON
 * stream (GET /v1/monitor/stream?events=1) carries the monitor's samples (about one a second),
 * which feed the charts, and the task events, which say when the task, GPU and tenant lists
 * changed, so they are fetched again only then (the daemon caches those answers per viewer), and
 * the alerts as they fire or resolve, so the alerts are fetched again then.
 * One stream, not two: browsers allow six connections per origin over HTTP/1.1, and every open
 * tab holds its stream. Alerts are fetched on those changes and every 30 s. Only when no sample
 * has come for a while (a daemon without a monitor) are the lists fetched every few seconds.
 *
 * Nothing that happens between the page's first read and its stream going live is missed: the
 * daemon subscribes the stream to events before it writes the first line, and that line makes
 * the page read the lists again; and an answer is shown only if no read begun after it has been
 * shown already, so a slow first read cannot land after that re-read and put the older lists back.
 */
import type { AlertEvent, HistoryResponse, HistorySeries, MonitorSample } from '../../src/contract/monitor';
import type { GpuWithSlices } from '../../src/contract/gpus';
import type { GpusResponse, TaskBody, TenantBody } from '../../src/contract/schemas';
import { ApiError, getJson, getOptional, readNdjson } from './api';
import { Series } from './series';

/** A line of the stream: a sample, one of the caller's task events, or an alert firing or resolving (only their arrival matters here). */
type StreamLine = { readonly sample: MonitorSample } | { readonly event: unknown } | { readonly alert: unknown };

/** GET /v1/gpus with each GPU as the contract types it (the wire schema leaves the inventory's fields open). */
export type GpusView = Omit<GpusResponse, 'gpus'> & { readonly gpus: readonly GpuWithSlices[] };

export interface LiveState {
  readonly gpus: GpusView | null;
  /** Live tasks (queued, running, suspended, ...), in submission order. */
  readonly tasks: readonly TaskBody[];
  readonly tenants: readonly TenantBody[];
  /** null: not fetched yet; 'unavailable': this daemon has no alerts endpoint. */
  readonly alerts: readonly AlertEvent[] | null | 'unavailable';
  readonly sample: MonitorSample | null;
  /** The sample stream is open and delivering. */
  readonly streaming: boolean;
  /** The last failure to reach the daemon, shown in the header until the next success. */
  readonly problem: string | null;
}

/**
 * Reads that may answer out of order (a slow first read, the re-read as the stream opens): the
 * answer of a read begun before one already shown is stale and is dropped.
 */
class ReadOrder {
  private begun = 0;
  private shown = 0;

  begin(): number {
    return ++this.begun;
  }

  /** Whether read `n`'s answer is to be shown (and, if so, it becomes the newest shown). */
  accept(n: number): boolean {
    if (n < this.shown) return false;
    this.shown = n;
    return true;
  }
}

/** How much of a chart's past is shown (and backfilled from history): 15 minutes. */
export const WINDOW_MS = 15 * 60_000;
const FALLBACK_MS = 5_000;
const ALERTS_MS = 30_000;

export class Live {
  state: LiveState = { gpus: null, tasks: [], tenants: [], alerts: null, sample: null, streaming: false, problem: null };
  /** Per GPU index: util, mem, temp, power; and per slice on it, `mem:<task>` and `share:<task>`. */
  readonly gpuSeries = new Map<number, Series>();
  /** Per task: mem and memLimit, share and shareLimit, summed over its GPUs. */
  readonly taskSeries = new Map<string, Series>();
  private readonly listeners = new Set<() => void>();
  private readonly abort = new AbortController();
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private lastSampleAt = 0;
  private lastAlertsAt = 0;
  private sliceKey = '';
  private notifyQueued = false;
  private readonly listReads = new ReadOrder();
  private readonly alertReads = new ReadOrder();

  constructor(private readonly onUnauthenticated: (message: string) => void) {}

  start(): void {
    void this.refresh();
    void this.follow();
    this.ticker = setInterval(() => {
      const now = Date.now();
      if (now - this.lastSampleAt > FALLBACK_MS) void this.refresh();
      else if (now - this.lastAlertsAt > ALERTS_MS && this.state.alerts !== 'unavailable') void this.refreshAlerts();
    }, FALLBACK_MS);
  }

  stop(): void {
    this.abort.abort();
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    if (this.ticker !== null) clearInterval(this.ticker);
    this.listeners.clear();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Fetches the lists again shortly (several changes at once cost one round). */
  refreshSoon(): void {
    if (this.refreshTimer !== null) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      void this.refresh();
    }, 200);
  }

  async refresh(): Promise<void> {
    const read = this.listReads.begin();
    try {
      const [gpus, tasks, tenants] = await Promise.all([
        getJson<GpusView>('/v1/gpus', this.abort.signal),
        getJson<TaskBody[]>('/v1/tasks', this.abort.signal),
        getJson<TenantBody[]>('/v1/tenants', this.abort.signal),
      ]);
      if (this.listReads.accept(read)) this.set({ gpus, tasks, tenants, problem: null });
      await this.refreshAlerts();
    } catch (err) {
      this.failed(err);
    }
  }

  private async refreshAlerts(): Promise<void> {
    this.lastAlertsAt = Date.now();
    const read = this.alertReads.begin();
    try {
      // Firing ones and the last day's resolved ones: the view lists firing first, then what fired lately.
      const body = await getOptional<{ alerts: AlertEvent[] }>(`/v1/alerts?state=all&since=${Date.now() - 24 * 3600_000}`, this.abort.signal);
      if (this.alertReads.accept(read)) this.set({ alerts: body === null ? 'unavailable' : body.alerts });
    } catch (err) {
      this.failed(err);
    }
  }

  /** Fills a GPU's charts from history before the live samples (nothing when the daemon keeps none). */
  backfillGpu(index: number): Promise<void> {
    return this.backfillAll(this.seriesOf(this.gpuSeries, index), `gpu=${index}`, { gpu_utilization: 'util', gpu_memory_used_bytes: 'mem' });
  }

  backfillTask(id: string): Promise<void> {
    return this.backfillAll(this.seriesOf(this.taskSeries, id), `task=${encodeURIComponent(id)}`, { slice_memory_used_bytes: 'mem', slice_compute_share: 'share' });
  }

  /** `columns`: which history series fills which of the chart's columns. */
  private async backfillAll(series: Series, subject: string, columns: Partial<Record<HistorySeries, string>>): Promise<void> {
    await Promise.all(Object.entries(columns).map(([name, key]) => this.backfill(series, key, name as HistorySeries, subject)));
  }

  private async backfill(series: Series, key: string, name: HistorySeries, subject: string): Promise<void> {
    const to = Date.now();
    try {
      const history = await getOptional<HistoryResponse>(`/v1/history?series=${name}&${subject}&since=${to - WINDOW_MS}&until=${to}`, this.abort.signal);
      if (history !== null) {
        series.backfill(key, history.points);
        this.notify();
      }
    } catch {
      // History is a nicety: the charts fill from the live samples anyway.
    }
  }

  /** Runs the stream for as long as the page lives, reconnecting after a break (2 s, doubling to 30 s). */
  private async follow(): Promise<void> {
    let wait = 2_000;
    while (!this.abort.signal.aborted) {
      const opened = Date.now();
      try {
        // What changed while no stream was open is in none: the lists are read again once it is.
        let first = true;
        await readNdjson<StreamLine>(
          '/v1/monitor/stream?events=1',
          (line) => {
            if (first) {
              first = false;
              this.refreshSoon();
            }
            if ('sample' in line) this.take(line.sample);
            else if ('alert' in line) void this.refreshAlerts();
            else this.refreshSoon();
          },
          this.abort.signal,
        );
      } catch (err) {
        if (this.abort.signal.aborted) return;
        this.failed(err, 'live stream');
      }
      this.set({ streaming: false });
      if (Date.now() - opened > 60_000) wait = 2_000;
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 30_000);
    }
  }

  private take(sample: MonitorSample): void {
    this.lastSampleAt = Date.now();
    for (const g of sample.gpus) {
      const values: Record<string, number | null> = { util: g.utilizationGpu, mem: g.memoryUsedBytes, temp: g.temperatureCelsius, power: g.powerWatts };
      for (const s of sample.slices) {
        if (s.gpu !== g.index) continue;
        values[`mem:${s.task}`] = s.memoryUsedBytes;
        values[`share:${s.task}`] = s.computeShare;
      }
      this.seriesOf(this.gpuSeries, g.index).push(sample.at, values);
    }
    const byTask = new Map<string, { mem: number; memLimit: number; share: number | null; shareLimit: number | null }>();
    const add = (a: number | null, b: number | null): number | null => (b === null ? a : (a ?? 0) + b);
    for (const s of sample.slices) {
      const t = byTask.get(s.task) ?? { mem: 0, memLimit: 0, share: null, shareLimit: null };
      byTask.set(s.task, { mem: t.mem + s.memoryUsedBytes, memLimit: t.memLimit + s.memoryLimitBytes, share: add(t.share, s.computeShare), shareLimit: add(t.shareLimit, s.computeLimit) });
    }
    for (const [task, v] of byTask) this.seriesOf(this.taskSeries, task).push(sample.at, v);
    // Slices that came or went, or a queue that moved, mean the lists changed: the events stream
    // says so too, but a sample may come first (or, on a (re)connect, be all that says so).
    const key = `${sample.queue.queued}|${sample.slices.map((s) => `${s.task}:${s.gpu}:${s.state}`).join(',')}`;
    if (key !== this.sliceKey) {
      this.sliceKey = key;
      this.refreshSoon();
    }
    this.set({ sample, streaming: true });
  }

  private seriesOf<K>(map: Map<K, Series>, key: K): Series {
    let s = map.get(key);
    if (s === undefined) {
      s = new Series();
      map.set(key, s);
    }
    return s;
  }

  private failed(err: unknown, what = ''): void {
    if ((err as Error).name === 'AbortError') return;
    if (err instanceof ApiError && err.status === 401) {
      this.onUnauthenticated(err.message);
      return;
    }
    this.set({ problem: `${what === '' ? '' : `${what}: `}${(err as Error).message}` });
  }

  private set(change: Partial<LiveState>): void {
    this.state = { ...this.state, ...change };
    this.notify();
  }

  /** Views redraw at most once a frame, however many changes came in it. */
  private notify(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    requestAnimationFrame(() => {
      this.notifyQueued = false;
      for (const l of this.listeners) l();
    });
  }
}
