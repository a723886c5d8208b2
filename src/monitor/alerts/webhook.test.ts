import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertEvent } from '../../contract/monitor.js';
import { alertmanagerBody, WebhookSink } from './webhook.js';

const alert = (id: string, state: AlertEvent['state'] = 'firing'): AlertEvent => ({
  id,
  rule: 'gpu-memory-warning',
  severity: 'warning',
  state,
  subject: { gpu: 0, uuid: 'GPU-aaaa' },
  value: 0.9,
  threshold: 0.85,
  startedAt: Date.UTC(2026, 11, 6, 20, 0, 0),
  resolvedAt: state === 'resolved' ? Date.UTC(2026, 11, 6, 20, 5, 0) : null,
  summary: 'GPU 0 memory at 90% (threshold 85%)',
  silenced: false,
});

/** A real HTTP receiver answering with the statuses given, in turn (then 200); null: never answers. */
async function receiver(statuses: (number | null)[]): Promise<{ url: string; bodies: unknown[]; times: number[]; headers: IncomingMessage['headers'][]; server: Server }> {
  const bodies: unknown[] = [];
  const times: number[] = [];
  const headers: IncomingMessage['headers'][] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      times.push(Date.now());
      headers.push(req.headers);
      const status = statuses.length > 0 ? statuses.shift() : 200;
      if (status === null) return; // hangs: the sink's timeout must end it
      if (status === 200) bodies.push(JSON.parse(text));
      res.statusCode = status as number;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies, times, headers, server };
}

const servers: Server[] = [];
const sinks: WebhookSink[] = [];
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
  for (const s of servers.splice(0)) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('WebhookSink', () => {
  it('retries a failing receiver with growing delays until it succeeds, then sends the next', async () => {
    const r = await receiver([500, 503, null, 200]);
    servers.push(r.server);
    const problems: string[] = [];
    const sink = new WebhookSink({ url: r.url, receiver: 'ops', hostname: 'node-1', headers: { authorization: 'Bearer x' }, timeoutMs: 200, baseDelayMs: 40, maxDelayMs: 1000, random: () => 0, onProblem: (m) => problems.push(m) });
    sinks.push(sink);
    sink.enqueue(alert('a1'));
    await until(() => r.bodies.length === 1);
    // Tries at t0, +20 (half of 40: jitter 0), +40, +80 after the timeout of 200 (counted from
    // before the receiver saw the request: a few ms of slack).
    const gaps = r.times.slice(1).map((t, i) => t - (r.times[i] as number));
    expect(gaps[0]).toBeGreaterThanOrEqual(18);
    expect(gaps[1]).toBeGreaterThanOrEqual(38);
    expect(gaps[2]).toBeGreaterThanOrEqual(200 + 80 - 15);
    expect(r.headers[0]?.authorization).toBe('Bearer x');
    sink.enqueue(alert('a1', 'resolved'));
    // The receiver keeps the body before it answers: the sink counts it once the answer is in.
    await until(() => sink.stats.delivered === 2);
    expect(sink.stats).toEqual({ delivered: 2, dropped: 0 });
    expect(problems).toEqual([]);
    expect((r.bodies[1] as { status: string }).status).toBe('resolved');
  });

  it('gives up after maxAttempts, and does not retry a 4xx other than 408/429', async () => {
    const r = await receiver([500, 500, 400]);
    servers.push(r.server);
    const problems: string[] = [];
    const sink = new WebhookSink({ url: r.url, receiver: 'ops', hostname: 'h', maxAttempts: 2, baseDelayMs: 5, random: () => 1, onProblem: (m) => problems.push(m) });
    sinks.push(sink);
    sink.enqueue(alert('a1'));
    await until(() => problems.length === 1);
    expect(problems[0]).toBe('webhook delivery failed; 1 alert(s) dropped: HTTP 500');
    sink.enqueue(alert('a2'));
    await until(() => problems.length === 2);
    expect(problems[1]).toBe('webhook delivery failed; 1 alert(s) dropped: HTTP 400');
    expect(r.times).toHaveLength(3);
    expect(sink.stats).toEqual({ delivered: 0, dropped: 2 });
  });

  it('keeps its queue bounded (the oldest go) and never waits in enqueue', async () => {
    const r = await receiver([null]);
    servers.push(r.server);
    const problems: string[] = [];
    const sink = new WebhookSink({ url: r.url, receiver: 'ops', hostname: 'h', maxQueue: 3, maxBatch: 1, timeoutMs: 300, maxAttempts: 1, onProblem: (m) => problems.push(m) });
    sinks.push(sink);
    const started = performance.now();
    for (let i = 0; i < 10; i++) sink.enqueue(alert(`a${i}`));
    expect(performance.now() - started).toBeLessThan(50);
    // a0 went out first (in flight, hanging: dropped at its timeout); of a1..a9 the newest three are kept.
    expect(sink.stats.dropped).toBe(6);
    await until(() => r.bodies.length === 3);
    expect(sink.stats.dropped).toBe(7);
    expect(problems.at(-1)).toBe('webhook delivery failed; 1 alert(s) dropped: no answer within 300 ms');
    expect(r.bodies.map((b) => ((b as { alerts: { fingerprint: string }[] }).alerts[0] as { fingerprint: string }).fingerprint)).toEqual(['a7', 'a8', 'a9']);
    expect(problems[0]).toMatch(/^webhook queue full: dropped the 1 oldest alert/);
  });

  it('does not send resolutions when sendResolved is false', async () => {
    const r = await receiver([]);
    servers.push(r.server);
    const sink = new WebhookSink({ url: r.url, receiver: 'ops', hostname: 'h', sendResolved: false });
    sinks.push(sink);
    sink.enqueue(alert('a1', 'resolved'));
    sink.enqueue(alert('a2'));
    await until(() => r.bodies.length === 1);
    expect(((r.bodies[0] as { alerts: { fingerprint: string }[] }).alerts).map((a) => a.fingerprint)).toEqual(['a2']);
  });
});

describe('alertmanagerBody', () => {
  it("is Alertmanager's webhook format, version 4", () => {
    const body = alertmanagerBody([alert('0123456789abcdef'), { ...alert('fedcba9876543210', 'resolved'), subject: { gpu: 1, uuid: 'GPU-bbbb', task: 't1', tenant: 'team-a' } }], 'ops', 'node-1');
    expect(body).toEqual({
      version: '4',
      groupKey: '{}:{hostname="node-1"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'ops',
      groupLabels: { hostname: 'node-1' },
      commonLabels: { alertname: 'gpu-memory-warning', severity: 'warning', hostname: 'node-1' },
      commonAnnotations: { summary: 'GPU 0 memory at 90% (threshold 85%)', value: '0.9', threshold: '0.85' },
      externalURL: '',
      alerts: [
        { status: 'firing', labels: { alertname: 'gpu-memory-warning', severity: 'warning', hostname: 'node-1', gpu: '0', uuid: 'GPU-aaaa' }, annotations: { summary: 'GPU 0 memory at 90% (threshold 85%)', value: '0.9', threshold: '0.85' }, startsAt: '2026-12-06T20:00:00.000Z', endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: '0123456789abcdef' },
        { status: 'resolved', labels: { alertname: 'gpu-memory-warning', severity: 'warning', hostname: 'node-1', gpu: '1', uuid: 'GPU-bbbb', task: 't1', tenant: 'team-a' }, annotations: { summary: 'GPU 0 memory at 90% (threshold 85%)', value: '0.9', threshold: '0.85' }, startsAt: '2026-12-06T20:00:00.000Z', endsAt: '2026-12-06T20:05:00.000Z', generatorURL: '', fingerprint: 'fedcba9876543210' },
      ],
    });
  });

  it('gives no tenant label to an alert kept with tenant "" (a task of no tenant, before subjects left it out)', () => {
    const body = alertmanagerBody([{ ...alert('0123456789abcdef'), subject: { gpu: 0, uuid: 'GPU-aaaa', task: 't0', tenant: '' } }], 'ops', 'node-1');
    expect((body['alerts'] as { labels: Record<string, string> }[])[0]?.labels).toEqual({ alertname: 'gpu-memory-warning', severity: 'warning', hostname: 'node-1', gpu: '0', uuid: 'GPU-aaaa', task: 't0' });
  });
});
