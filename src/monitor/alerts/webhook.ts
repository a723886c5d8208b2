/**
 * The webhook sink: alerts POSTed to a configured URL in Alertmanager's webhook format
 * (version 4, https://prometheus.io/docs/alerting/latest/configuration/#webhook_config), so a
 * receiver written for Alertmanager (a chat bridge, an incident tool) takes them as they are.
 *
 * `enqueue` only appends to a bounded queue and returns: sampling never waits on a receiver.
 * One batch is in flight at a time; a failed one (no answer within the timeout, a network error,
 * 408, 429 or 5xx) is retried after an exponentially growing delay with jitter (half fixed, half
 * random, so many daemons do not retry in step), up to `maxAttempts`, then dropped and logged.
 * Another 4xx is the receiver saying the request is wrong: not retried. A full queue drops its
 * oldest alerts (the newest state matters most), counted in the log.
 */
import type { AlertEvent } from '../../contract/monitor.js';

export interface WebhookSinkOptions {
  readonly url: string;
  /** The body's `receiver`. */
  readonly receiver: string;
  readonly hostname: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  readonly maxAttempts?: number;
  readonly maxQueue?: number;
  readonly sendResolved?: boolean;
  /** The first retry's delay (the n-th waits about base * 2^(n-1), at most maxDelayMs). */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** A batch holds at most this many alerts. */
  readonly maxBatch?: number;
  /** 0..1; Math.random unless a test fixes it. */
  readonly random?: () => number;
  /** A batch dropped, or alerts dropped from a full queue. */
  readonly onProblem?: (message: string, detail: Record<string, unknown>) => void;
}

/** Alertmanager's zero time: `endsAt` of an alert still firing. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** One Alertmanager alert: labels are what receivers group and route by. */
function amAlert(alert: AlertEvent, hostname: string): Record<string, unknown> {
  const labels: Record<string, string> = { alertname: alert.rule, severity: alert.severity, hostname };
  if (alert.subject.gpu !== undefined) labels['gpu'] = String(alert.subject.gpu);
  if (alert.subject.uuid !== undefined) labels['uuid'] = alert.subject.uuid;
  if (alert.subject.task !== undefined) labels['task'] = alert.subject.task;
  // Alerts kept from before tasks of no tenant named none carry tenant "": no label, as Prometheus reads an empty one.
  if (alert.subject.tenant !== undefined && alert.subject.tenant !== '') labels['tenant'] = alert.subject.tenant;
  return {
    status: alert.state,
    labels,
    annotations: { summary: alert.summary, value: String(alert.value), threshold: String(alert.threshold) },
    startsAt: new Date(alert.startedAt).toISOString(),
    endsAt: alert.resolvedAt === null ? ZERO_TIME : new Date(alert.resolvedAt).toISOString(),
    generatorURL: '',
    fingerprint: alert.id,
  };
}

/** The labels (or annotations) every alert has with the same value. */
function common(items: readonly Record<string, string>[]): Record<string, string> {
  const [first, ...rest] = items;
  if (first === undefined) return {};
  return Object.fromEntries(Object.entries(first).filter(([k, v]) => rest.every((o) => o[k] === v)));
}

/** The request body for a batch of alerts (Alertmanager webhook, version 4). */
export function alertmanagerBody(alerts: readonly AlertEvent[], receiver: string, hostname: string): Record<string, unknown> {
  const items = alerts.map((a) => amAlert(a, hostname));
  return {
    version: '4',
    groupKey: `{}:{hostname="${hostname}"}`,
    truncatedAlerts: 0,
    status: alerts.some((a) => a.state === 'firing') ? 'firing' : 'resolved',
    receiver,
    groupLabels: { hostname },
    commonLabels: common(items.map((i) => i['labels'] as Record<string, string>)),
    commonAnnotations: common(items.map((i) => i['annotations'] as Record<string, string>)),
    externalURL: '',
    alerts: items,
  };
}

export class WebhookSink {
  private readonly queue: AlertEvent[] = [];
  private sending = false;
  private closed = false;
  private wake: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: AbortController | null = null;
  private idle: Promise<void> = Promise.resolve();
  /** Batches delivered, and alerts dropped (queue full, or out of attempts). */
  readonly stats = { delivered: 0, dropped: 0 };

  constructor(private readonly options: WebhookSinkOptions) {}

  get url(): string {
    return this.options.url;
  }

  /** Queues an alert for delivery and returns at once. */
  enqueue(alert: AlertEvent): void {
    if (this.closed) return;
    if (alert.state === 'resolved' && this.options.sendResolved === false) return;
    this.queue.push(alert);
    const max = this.options.maxQueue ?? 1000;
    if (this.queue.length > max) {
      const dropped = this.queue.splice(0, this.queue.length - max).length;
      this.stats.dropped += dropped;
      this.options.onProblem?.(`webhook queue full: dropped the ${dropped} oldest alert(s)`, { url: this.options.url, dropped });
    }
    if (!this.sending) {
      this.sending = true;
      this.idle = this.pump();
    }
  }

  /** Stops: no more tries, the request in flight is aborted. What is still queued is dropped. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    this.inFlight?.abort();
    await this.idle;
  }

  private async pump(): Promise<void> {
    try {
      while (!this.closed && this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatch ?? 64);
        await this.deliver(batch);
      }
    } finally {
      this.sending = false;
    }
  }

  private async deliver(batch: AlertEvent[]): Promise<void> {
    const maxAttempts = this.options.maxAttempts ?? 6;
    const body = JSON.stringify(alertmanagerBody(batch, this.options.receiver, this.options.hostname));
    let problem = '';
    for (let attempt = 1; attempt <= maxAttempts && !this.closed; attempt++) {
      if (attempt > 1) await this.sleep(this.delay(attempt - 1));
      if (this.closed) return;
      const outcome = await this.post(body);
      if (outcome.kind === 'ok') {
        this.stats.delivered++;
        return;
      }
      problem = outcome.problem;
      if (outcome.kind === 'refused') break;
    }
    if (this.closed) return;
    this.stats.dropped += batch.length;
    this.options.onProblem?.(`webhook delivery failed; ${batch.length} alert(s) dropped: ${problem}`, { url: this.options.url, dropped: batch.length });
  }

  /** The wait before retry `n` (1-based): base * 2^(n-1), capped, of which the upper half is random. */
  private delay(n: number): number {
    const full = Math.min(this.options.maxDelayMs ?? 60_000, (this.options.baseDelayMs ?? 1000) * 2 ** (n - 1));
    return full / 2 + (this.options.random ?? Math.random)() * (full / 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    }).then(() => {
      this.wake = null;
      this.timer = null;
    });
  }

  private async post(body: string): Promise<{ kind: 'ok' } | { kind: 'retry' | 'refused'; problem: string }> {
    const controller = new AbortController();
    this.inFlight = controller;
    const timeout = setTimeout(() => controller.abort(), this.options.timeoutMs ?? 10_000);
    try {
      const res = await fetch(this.options.url, { method: 'POST', headers: { 'content-type': 'application/json', ...this.options.headers }, body, signal: controller.signal });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { kind: 'ok' };
      const retry = res.status >= 500 || res.status === 408 || res.status === 429;
      return { kind: retry ? 'retry' : 'refused', problem: `HTTP ${res.status}` };
    } catch (err) {
      return { kind: 'retry', problem: controller.signal.aborted ? `no answer within ${this.options.timeoutMs ?? 10_000} ms` : (err as Error).message };
    } finally {
      clearTimeout(timeout);
      this.inFlight = null;
    }
  }
}
