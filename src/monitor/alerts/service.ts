/**
 * The daemon's alerts: the imperative shell around the pure engine. It takes each sample from
 * the hub, marks faulty GPUs unhealthy, evaluates the rules, writes what fired or resolved to the
 * database, hands it to followers (GET /v1/alerts?follow=1) and to the webhook sinks (unless
 * silenced), and keeps the silences. Nothing here waits on the network: webhooks queue.
 */
import { randomBytes } from 'node:crypto';
import type { AlertActor, AlertSource, Silence, SilenceMatcher } from '../../contract/alerts.js';
import type { AlertEvent, MonitorSample, SampleSource } from '../../contract/monitor.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { AlertEngine } from './engine.js';
import { newFaults, type GpuFaultSink } from './faults.js';
import { isSilenced } from './silences.js';
import type { AlertSettings } from './rules.js';
import type { AlertStore } from './store.js';
import { WebhookSink } from './webhook.js';

export type { AlertSettings } from './rules.js';

export interface AlertServiceOptions {
  readonly source: SampleSource;
  readonly store: AlertStore;
  readonly settings: AlertSettings;
  readonly hostname: string;
  readonly now?: () => number;
  /** The GPU health book's markFault: an XID or uncorrectable ECC fault fences the GPU. */
  readonly onGpuFault?: GpuFaultSink;
  /** A task's tenant (queue alerts name only the task). */
  readonly tenantOf?: (task: string) => string | null | undefined;
  /** Records a silence made or ended, in the daemon's audit log. */
  readonly audit?: (by: AlertActor, entry: { action: string; target: string; detail: Record<string, unknown> }) => void;
  /** Something went wrong that is not the caller's: a webhook gave up, the database refused a write. */
  readonly onProblem?: (message: string, detail: Record<string, unknown>) => void;
  /** Test hook: webhook retry timing. */
  readonly webhookTiming?: { readonly baseDelayMs: number; readonly maxDelayMs: number };
}

/** The longest a silence may run. */
const SILENCE_MAX_MS = 366 * 86_400_000;

export class AlertService implements AlertSource {
  private readonly engine: AlertEngine;
  private readonly listeners = new Set<(alert: AlertEvent) => void>();
  private sinks: WebhookSink[] = [];
  private activeSilences: Silence[] = [];
  private previous: MonitorSample | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly now: () => number;

  constructor(private readonly options: AlertServiceOptions) {
    this.now = options.now ?? Date.now;
    this.engine = new AlertEngine([], options.tenantOf);
    this.configure(options.settings);
    this.engine.restore(options.store.alerts('firing'));
    this.activeSilences = options.store.silences(this.now()).filter((s) => !s.expired);
  }

  /** Starts taking samples. */
  start(): void {
    this.unsubscribe ??= this.options.source.subscribe((sample) => this.onSample(sample));
  }

  /** Applies new settings (a config reload): rules, webhooks, how many resolved alerts are kept. */
  configure(settings: AlertSettings): void {
    this.engine.setRules(settings.enabled ? settings.rules : []);
    this.options.store.setKeepResolved(settings.keepResolved);
    const old = this.sinks;
    this.sinks = settings.webhooks.map(
      (w) =>
        new WebhookSink({
          url: w.url,
          receiver: w.name ?? 'gpushare',
          hostname: this.options.hostname,
          ...(w.headers ? { headers: w.headers } : {}),
          timeoutMs: (w.timeoutSeconds ?? 10) * 1000,
          maxAttempts: w.maxAttempts ?? 6,
          maxQueue: w.maxQueue ?? 1000,
          sendResolved: w.sendResolved ?? true,
          ...(this.options.webhookTiming ?? {}),
          onProblem: (message, detail) => this.options.onProblem?.(message, detail),
        }),
    );
    for (const s of old) void s.close();
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.listeners.clear();
    await Promise.all(this.sinks.map((s) => s.close()));
  }

  private onSample(sample: MonitorSample): void {
    for (const fault of newFaults(this.previous, sample)) {
      try {
        this.options.onGpuFault?.(fault.uuid, { kind: fault.kind, code: fault.code, at: fault.at });
      } catch (err) {
        this.options.onProblem?.('could not mark a faulty GPU unhealthy', { uuid: fault.uuid, kind: fault.kind, err: (err as Error).message });
      }
    }
    this.previous = sample;
    const changes = this.engine.evaluate(sample);
    if (changes.length === 0) return;
    const now = this.now();
    this.activeSilences = this.activeSilences.filter((s) => s.until > now);
    for (const change of changes) {
      const silenced = isSilenced(this.activeSilences, change, now);
      // A resolution reaches the webhooks that were told of the firing, and only those.
      const notify = change.state === 'firing' ? !silenced : !change.silenced;
      const alert = { ...change, silenced };
      // Kept in the engine with the flag it fired with: it says whether webhooks heard of it.
      if (change.state === 'firing') this.engine.markSilenced(alert.id, silenced);
      try {
        this.options.store.record(alert);
      } catch (err) {
        this.options.onProblem?.('could not record an alert in the database', { id: alert.id, err: (err as Error).message });
      }
      for (const listener of this.listeners) listener(alert);
      if (notify) for (const sink of this.sinks) sink.enqueue(alert);
    }
  }

  list(query: { readonly state?: 'firing' | 'resolved' | 'all' | undefined; readonly since?: number | undefined }): AlertEvent[] {
    const state = query.state ?? 'firing';
    const now = this.now();
    const firing = state === 'resolved' ? [] : this.engine.firing().map((a) => ({ ...a, silenced: isSilenced(this.activeSilences, a, now) }));
    const resolved = state === 'firing' ? [] : this.options.store.alerts('resolved');
    const since = query.since ?? 0;
    const changedAt = (a: AlertEvent): number => a.resolvedAt ?? a.startedAt;
    return [...firing, ...resolved].filter((a) => changedAt(a) >= since).sort((a, b) => changedAt(b) - changedAt(a) || (a.id < b.id ? -1 : 1));
  }

  follow(listener: (alert: AlertEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  silences(all: boolean): Silence[] {
    const kept = this.options.store.silences(this.now());
    return all ? kept : kept.filter((s) => !s.expired);
  }

  addSilence(input: { readonly matchers: readonly SilenceMatcher[]; readonly until: number; readonly comment: string }, by: AlertActor): Silence {
    const now = this.now();
    if (input.until <= now) throw new GsError(ErrorCodes.invalidArgument, `until (${new Date(input.until).toISOString()}) is not in the future`);
    if (input.until > now + SILENCE_MAX_MS) throw new GsError(ErrorCodes.invalidArgument, 'until is more than a year away; silence for less, and again later if need be');
    const silence: Silence = { id: randomBytes(6).toString('hex'), matchers: [...input.matchers], until: input.until, comment: input.comment, createdBy: by.actor, createdAt: now, expired: false };
    this.options.store.addSilence(silence);
    this.activeSilences = [...this.activeSilences, silence];
    this.options.audit?.(by, { action: 'silence.create', target: silence.id, detail: { matchers: silence.matchers, until: silence.until, comment: silence.comment } });
    return silence;
  }

  removeSilence(id: string, by: AlertActor): Silence {
    const now = this.now();
    const found = this.options.store.silence(id, now);
    if (found === null) throw new GsError(ErrorCodes.notFound, `no silence "${id}"`);
    if (!this.options.store.expireSilence(id, now)) throw new GsError(ErrorCodes.conflict, `silence ${id} already ended at ${new Date(found.until).toISOString()}`);
    this.activeSilences = this.activeSilences.filter((s) => s.id !== id);
    this.options.audit?.(by, { action: 'silence.remove', target: id, detail: {} });
    return { ...found, until: now, expired: true };
  }
}
