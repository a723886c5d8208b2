/**
 * `gpushare report`'s model, pure: from what the API answered (ReportInputs: history, tasks,
 * events, alerts) to the figures a report shows. The renderers (markdown.ts, html.ts) only lay
 * it out, and `-o json` is this model as it is.
 */
import type { AlertEvent, HistoryPoint, HistoryResponse } from '../../contract/monitor.js';

/** A task as the report reads it (a subset of the API's task). */
export interface ReportTask {
  readonly id: string;
  readonly tenant: string | null;
  readonly state: string;
  readonly command: readonly string[];
  readonly submittedAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly gpus: readonly { readonly index: number; readonly memoryBytes: number }[] | null;
  readonly peakMemoryBytes: number | null;
  readonly suspensions: number;
}

export interface ReportEvent {
  readonly at: number;
  readonly type: string;
  readonly taskId: string | null;
  readonly data: Readonly<Record<string, unknown>>;
}

export interface ReportInputs {
  readonly from: number;
  readonly to: number;
  readonly generatedAt: number;
  /** Where the figures came from (the daemon's address and backend), for the header. */
  readonly source: string;
  readonly gpus: readonly { readonly index: number; readonly uuid: string; readonly model: string; readonly memoryTotalBytes: number }[];
  /** Per GPU, its utilization and memory history over the window (null: none recorded). */
  readonly gpuHistory: ReadonlyMap<number, { readonly utilization: HistoryResponse | null; readonly memory: HistoryResponse | null }>;
  /** Per tenant, its memory used and compute share (null: none recorded, or not the caller's to read). */
  readonly tenantHistory: ReadonlyMap<string, { readonly memory: HistoryResponse | null; readonly compute: HistoryResponse | null }>;
  /** The queue's length over the window. */
  readonly queueHistory: HistoryResponse | null;
  /** Every task that lived at some point of the window. */
  readonly tasks: readonly ReportTask[];
  /** Task events inside the window. */
  readonly events: readonly ReportEvent[];
  /** Alerts from GET /v1/alerts; null: the daemon keeps none (no such endpoint). */
  readonly alerts: readonly AlertEvent[] | null;
}

/** A chart's line: (t, mean, max) at most CHART_POINTS of them. */
export type ChartLine = readonly (readonly [number, number, number])[];

export interface GpuReport {
  readonly index: number;
  readonly uuid: string;
  readonly model: string;
  readonly memoryTotalBytes: number;
  readonly utilization: SeriesStats | null;
  readonly memoryUsedBytes: SeriesStats | null;
  /** Seconds each history point covered (the resolution the window was answered at). */
  readonly stepSeconds: number | null;
  readonly charts: { readonly utilization: ChartLine; readonly memoryUsedBytes: ChartLine };
}

export interface TenantReport {
  readonly tenant: string;
  readonly tasks: number;
  /** Seconds its tasks held GPUs inside the window, times how many GPUs each held. */
  readonly gpuSeconds: number;
  readonly memoryUsedBytes: SeriesStats | null;
  readonly computeShare: SeriesStats | null;
}

export interface TaskReport {
  readonly id: string;
  readonly tenant: string | null;
  readonly state: string;
  readonly command: string;
  readonly gpuSeconds: number;
  readonly reservedMemoryBytes: number;
  readonly peakMemoryBytes: number | null;
  readonly waitedSeconds: number | null;
  readonly suspensions: number;
}

export interface WaitReport {
  /** Tasks that started inside the window, and how long each had waited in the queue. */
  readonly started: number;
  readonly meanSeconds: number | null;
  readonly p50Seconds: number | null;
  readonly p95Seconds: number | null;
  readonly maxSeconds: number | null;
  /** Tasks still queued at the window's end, and the longest of their waits so far. */
  readonly stillQueued: number;
  readonly longestQueuedSeconds: number | null;
  readonly queueLength: SeriesStats | null;
}

export interface SuspensionReport {
  readonly suspended: number;
  readonly resumed: number;
  readonly failed: number;
  readonly meanSuspendMs: number | null;
  readonly meanResumeMs: number | null;
  readonly gpuBytesMoved: number;
}

export interface AlertReport {
  /** False: the daemon keeps no alerts (GET /v1/alerts is not there), so none could be listed. */
  readonly available: boolean;
  readonly total: number;
  readonly firingAtEnd: number;
  readonly bySeverity: Readonly<Record<AlertEvent['severity'], number>>;
  /** The window's alerts, newest first, at most MAX_ALERTS. */
  readonly list: readonly AlertEvent[];
}

export const CHART_POINTS = 240;
export const TOP_TASKS = 10;
export const MAX_ALERTS = 50;

/** Summary figures of a series over the window: the mean of its points' means, the 95th percentile of them, the highest max. */
export interface SeriesStats {
  readonly mean: number;
  readonly p95: number;
  readonly max: number;
  readonly points: number;
}

/** The q-quantile (0..1) of `values` by the nearest-rank method; null for none. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

export function seriesStats(points: readonly HistoryPoint[] | undefined): SeriesStats | null {
  if (points === undefined || points.length === 0) return null;
  const means = points.map((p) => p.mean);
  return { mean: means.reduce((a, b) => a + b, 0) / means.length, p95: quantile(means, 0.95) as number, max: Math.max(...points.map((p) => p.max)), points: points.length };
}

/** At most `n` chart points: neighbours merged, keeping each group's first t, mean of means and highest max. */
export function chartLine(points: readonly HistoryPoint[] | undefined, n = CHART_POINTS): ChartLine {
  if (points === undefined) return [];
  const per = Math.max(1, Math.ceil(points.length / n));
  const out: [number, number, number][] = [];
  for (let i = 0; i < points.length; i += per) {
    const group = points.slice(i, i + per);
    out.push([group[0]!.t, group.reduce((a, p) => a + p.mean, 0) / group.length, Math.max(...group.map((p) => p.max))]);
  }
  return out;
}

/** Seconds `task` held its GPUs inside [from, to), times how many it held. */
export function gpuSecondsOf(task: ReportTask, from: number, to: number): number {
  if (task.startedAt === null || task.gpus === null || task.gpus.length === 0) return 0;
  const start = Math.max(from, task.startedAt);
  const end = Math.min(to, task.finishedAt ?? to);
  return end > start ? ((end - start) / 1000) * task.gpus.length : 0;
}

const mean = (xs: readonly number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

/**
 * The report: the window (Unix ms), when it was made and from which daemon, then section by
 * section what the renderers lay out (GPUs by index; tenants and the top tasks, at most
 * TOP_TASKS, most GPU-time first; `tasksInWindow` counts every task that lived in the window).
 */
export type Report = ReturnType<typeof buildReport>;

export function buildReport(input: ReportInputs) {
  const { from, to } = input;
  const lived = input.tasks.filter((t) => t.submittedAt < to && (t.finishedAt === null || t.finishedAt >= from));
  const gpus = [...input.gpus].sort((a, b) => a.index - b.index).map((g): GpuReport => {
    const h = input.gpuHistory.get(g.index);
    return {
      ...g,
      utilization: seriesStats(h?.utilization?.points),
      memoryUsedBytes: seriesStats(h?.memory?.points),
      stepSeconds: h?.utilization?.step ?? h?.memory?.step ?? null,
      charts: { utilization: chartLine(h?.utilization?.points), memoryUsedBytes: chartLine(h?.memory?.points) },
    };
  });

  const tenantNames = new Set<string>([...input.tenantHistory.keys(), ...lived.map((t) => t.tenant ?? '(none)')]);
  const tenants = [...tenantNames]
    .map((tenant): TenantReport => {
      const mine = lived.filter((t) => (t.tenant ?? '(none)') === tenant);
      const h = input.tenantHistory.get(tenant);
      return { tenant, tasks: mine.length, gpuSeconds: mine.reduce((n, t) => n + gpuSecondsOf(t, from, to), 0), memoryUsedBytes: seriesStats(h?.memory?.points), computeShare: seriesStats(h?.compute?.points) };
    })
    .sort((a, b) => b.gpuSeconds - a.gpuSeconds || a.tenant.localeCompare(b.tenant));

  const waited = (t: ReportTask): number | null => (t.startedAt === null ? null : (t.startedAt - t.submittedAt) / 1000);
  const topTasks = lived
    .map((t): TaskReport => ({
      id: t.id,
      tenant: t.tenant,
      state: t.state,
      command: t.command.join(' '),
      gpuSeconds: gpuSecondsOf(t, from, to),
      reservedMemoryBytes: (t.gpus ?? []).reduce((n, g) => n + g.memoryBytes, 0),
      peakMemoryBytes: t.peakMemoryBytes,
      waitedSeconds: waited(t),
      suspensions: t.suspensions,
    }))
    .sort((a, b) => b.gpuSeconds - a.gpuSeconds || b.reservedMemoryBytes - a.reservedMemoryBytes || a.id.localeCompare(b.id))
    .slice(0, TOP_TASKS);

  const waits = lived.filter((t) => t.startedAt !== null && t.startedAt >= from && t.startedAt < to).map((t) => waited(t) as number);
  const queued = lived.filter((t) => t.state === 'queued');
  const waitReport: WaitReport = {
    started: waits.length,
    meanSeconds: mean(waits),
    p50Seconds: quantile(waits, 0.5),
    p95Seconds: quantile(waits, 0.95),
    maxSeconds: waits.length === 0 ? null : Math.max(...waits),
    stillQueued: queued.length,
    longestQueuedSeconds: queued.length === 0 ? null : Math.max(...queued.map((t) => (to - t.submittedAt) / 1000)),
    queueLength: seriesStats(input.queueHistory?.points),
  };

  const inWindow = input.events.filter((e) => e.at >= from && e.at < to);
  const ms = (type: string): number[] => inWindow.filter((e) => e.type === type && typeof e.data['ms'] === 'number').map((e) => e.data['ms'] as number);
  const suspensions: SuspensionReport = {
    suspended: inWindow.filter((e) => e.type === 'task.suspended').length,
    resumed: inWindow.filter((e) => e.type === 'task.resumed').length,
    failed: inWindow.filter((e) => e.type === 'task.suspend-failed' || e.type === 'task.resume-failed').length,
    meanSuspendMs: mean(ms('task.suspended')),
    meanResumeMs: mean(ms('task.resumed')),
    gpuBytesMoved: inWindow.filter((e) => e.type === 'task.suspended' || e.type === 'task.resumed').reduce((n, e) => n + (typeof e.data['gpuBytes'] === 'number' ? e.data['gpuBytes'] : 0), 0),
  };

  const alertsIn = latestOfEach(input.alerts ?? []).filter((a) => a.startedAt < to && (a.resolvedAt === null || a.resolvedAt >= from)).sort((a, b) => b.startedAt - a.startedAt);
  const alerts: AlertReport = {
    available: input.alerts !== null,
    total: alertsIn.length,
    firingAtEnd: alertsIn.filter((a) => a.state === 'firing' && (a.resolvedAt === null || a.resolvedAt >= to)).length,
    bySeverity: { info: alertsIn.filter((a) => a.severity === 'info').length, warning: alertsIn.filter((a) => a.severity === 'warning').length, critical: alertsIn.filter((a) => a.severity === 'critical').length },
    list: alertsIn.slice(0, MAX_ALERTS),
  };

  return { from, to, generatedAt: input.generatedAt, source: input.source, gpus, tenants, topTasks, tasksInWindow: lived.length, waits: waitReport, suspensions, alerts } as const;
}

/** One event per alert id: a stream or list may carry both its firing and its resolved event; the resolved one (or the later) stands. */
function latestOfEach(alerts: readonly AlertEvent[]): AlertEvent[] {
  const byId = new Map<string, AlertEvent>();
  for (const a of alerts) {
    const seen = byId.get(a.id);
    if (seen === undefined || (seen.resolvedAt === null && (a.resolvedAt !== null || a.startedAt >= seen.startedAt))) byId.set(a.id, a);
  }
  return [...byId.values()];
}
