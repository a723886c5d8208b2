/**
 * GET /metrics: the daemon's Prometheus exporter. Figures of GPUs and slices come from the
 * monitor's latest sample, written at scrape time (at most one sampling period old; text.ts);
 * the daemon's counters and histograms are prom-client's, on registries of its own (never the
 * global one), observed where their events happen (queue passes, task events, API responses).
 *
 * Two registries, one per format: prom-client fixes a registry's format, and rendering
 * OpenMetrics renames its counters in place (`x_total` becomes `x`), so the Prometheus text and
 * OpenMetrics each get their own metric objects; events are observed into both (a few
 * increments). A sample's text is kept per format until the next sample.
 */
import { Registry, type OpenMetricsContentType } from 'prom-client';
import type { MonitorSample, SampleSource } from '../../contract/monitor.js';
import { writeCompatFamilies, type MetricsCompatSet } from './compat.js';
import { DaemonMetrics, DECISION_OUTCOMES, type DecisionOutcome, type TenantFigures } from './daemon-metrics.js';
import type { AnyRegistry } from './registry.js';
import { writeSampleFamilies } from './sample-metrics.js';

export type { MetricsCompatSet } from './compat.js';

export interface ExporterOptions {
  readonly samples: SampleSource;
  /** The tenants with their usage and quotas now (Daemon.tenants). */
  readonly tenants: () => readonly TenantFigures[];
  /** A task's submission time, to measure its wait when it starts; null when it is gone. */
  readonly submittedAt: (taskId: string) => number | null;
  readonly compat?: readonly MetricsCompatSet[];
  /** false: only the sample's families (the node agent has no queue, API or tenants of its own); default true. */
  readonly daemonMetrics?: boolean;
}

/** A task event as the daemon's event bus hands it out (EventRecord's shape). */
export interface TaskEventLike {
  readonly at: number;
  readonly type: string;
  readonly taskId: string | null;
  readonly data: Readonly<Record<string, unknown>>;
}

interface Format {
  readonly registry: AnyRegistry;
  readonly openMetrics: boolean;
  readonly daemon: DaemonMetrics;
  /** The text of the last sample written, and which sample it was. */
  written: { readonly sample: MonitorSample; readonly text: string } | null;
}

export class MetricsExporter {
  private readonly prometheus: Format;
  private readonly openMetrics: Format;

  constructor(private readonly options: ExporterOptions) {
    this.prometheus = format(new Registry(), false);
    const openMetrics = new Registry<OpenMetricsContentType>();
    openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    this.openMetrics = format(openMetrics, true);
  }

  /** The scrape: OpenMetrics when the scraper's Accept asks for it, else the Prometheus text format. */
  async render(accept: string | undefined): Promise<{ readonly contentType: string; readonly body: string }> {
    const f = wantsOpenMetrics(accept) ? this.openMetrics : this.prometheus;
    const sample = this.options.samples.latest();
    if (sample !== null && sample !== f.written?.sample) {
      const out: string[] = [];
      writeSampleFamilies(out, sample, f.openMetrics);
      writeCompatFamilies(out, sample, this.options.compat ?? [], f.openMetrics);
      f.written = { sample, text: `${out.join('\n')}\n` };
    }
    const sampled = f.written?.text ?? '';
    if (this.options.daemonMetrics === false) return { contentType: f.registry.contentType, body: f.openMetrics ? `${sampled}# EOF\n` : sampled };
    f.daemon.applyTenants(this.options.tenants());
    // prom-client's part ends with OpenMetrics' `# EOF`, which must come last.
    return { contentType: f.registry.contentType, body: sampled + (await f.registry.metrics()) };
  }

  /** One API response (fastify's onResponse): its route pattern, never the raw URL (ids would explode the label set). */
  observeRequest(route: string, method: string, statusCode: number, seconds: number): void {
    const labels = { route, method, status_class: `${Math.floor(statusCode / 100)}xx` };
    this.each((d) => d.apiSeconds.observe(labels, seconds));
  }

  /** A queue pass (the daemon's observer): its decisions by outcome and how long deciding took. */
  queuePass(decisions: Readonly<Record<DecisionOutcome, number>>, seconds: number): void {
    this.each((d) => {
      for (const outcome of DECISION_OUTCOMES) if (decisions[outcome] > 0) d.decisions.inc({ outcome }, decisions[outcome]);
      d.passSeconds.observe(seconds);
    });
  }

  /** Task events: a start measures the task's wait; a suspension or resumption its time and
   * bytes; overcommit's swaps, waits and refusals (README, "Memory overcommit") are counted. */
  taskEvent(event: TaskEventLike): void {
    if (event.type === 'task.started' && event.data['adopted'] !== true && event.taskId !== null) {
      const since = this.options.submittedAt(event.taskId);
      if (since !== null) this.each((d) => d.queueWait.observe(Math.max(0, event.at - since) / 1000));
    } else if (event.type === 'task.suspended' || event.type === 'task.resumed') {
      const ms = numberOr(event.data['ms']);
      const bytes = numberOr(event.data['gpuBytes']);
      const suspended = event.type === 'task.suspended';
      this.each((d) => {
        if (ms !== null) (suspended ? d.suspendSeconds : d.resumeSeconds).observe(ms / 1000);
        if (bytes !== null) (suspended ? d.suspendBytes : d.resumeBytes).inc(bytes);
      });
    } else if (event.type === 'task.swapped-out' || event.type === 'task.swapped-in') {
      const out = event.type === 'task.swapped-out';
      const direction = out ? 'out' : 'in';
      const reason = out ? labelOr(event.data['reason'], 'unknown') : 'in';
      const seconds = numberOr(event.data['swapSeconds']);
      const waited = out ? null : numberOr(event.data['waitedMs']);
      const handover = out ? null : event.data['handover'];
      const wall = typeof handover === 'object' && handover !== null ? numberOr((handover as Record<string, unknown>)['wallSeconds']) : null;
      this.each((d) => {
        d.overcommitSwaps.inc({ direction, reason });
        if (seconds !== null) d.overcommitSwapSeconds.observe({ direction }, seconds);
        if (wall !== null) d.overcommitHandoverSeconds.observe(wall);
        if (waited !== null) d.overcommitWaitSeconds.observe({ kind: 'in' }, waited / 1000);
      });
    } else if (event.type === 'task.room-made') {
      const waited = numberOr(event.data['waitedMs']);
      if (waited !== null) this.each((d) => d.overcommitWaitSeconds.observe({ kind: 'room' }, waited / 1000));
    } else if (event.type === 'task.wants-room-refused') {
      this.each((d) => d.overcommitRoomRefused.inc());
    }
  }

  private each(observe: (d: DaemonMetrics) => void): void {
    observe(this.prometheus.daemon);
    observe(this.openMetrics.daemon);
  }
}

function format(registry: AnyRegistry, openMetrics: boolean): Format {
  return { registry, openMetrics, daemon: new DaemonMetrics(registry), written: null };
}

/** Prometheus asks for OpenMetrics first in its Accept header when it can read it. */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && /application\/openmetrics-text/i.test(accept);
}

/** A label value from an event's field: only the short lower-case words the daemon writes. */
function labelOr(v: unknown, fallback: string): string {
  return typeof v === 'string' && /^[a-z-]{1,16}$/.test(v) ? v : fallback;
}

function numberOr(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null;
}
