import { request, type IncomingMessage } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import type { AlertEvent, MonitorSample, SliceSample } from '../../contract/monitor.js';
import { SampleHub } from '../../monitor/hub.js';
import { handAlerts } from '../../../test/helpers/alerts.js';
import { bearer, inProcessDaemon, TEST_TOKENS } from '../../../test/helpers/api.js';
import { sampleStream, SAMPLE_STREAM_BACKLOG_BYTES } from '../streams.js';

const d = inProcessDaemon();
const hub = new SampleHub();
const app = await d.api({ tokens: TEST_TOKENS, samples: hub });
afterAll(() => d.close());

const slice = (task: string, tenant: string): SliceSample => ({
  task, tenant, gpu: 0, uuid: 'GPU-0', state: 'running', memoryLimitBytes: 2 ** 30, memoryUsedBytes: 2 ** 20,
  memoryByKind: { context: 0, alloc: 2 ** 20, vmm: 0, array: 0, pool: 0, host: 0, graph: 0 }, computeLimit: null, computeShare: 0.25,
  busySeconds: 1, throttledSeconds: 0, kernelLaunches: 10, kubernetes: null,
});
const sample = (at: number, oldestTask: string | null = null): MonitorSample => ({
  at, hostname: 'node-1', gpus: [], slices: [slice('aaaaaaaaaaaa', 'alice'), slice('bbbbbbbbbbbb', 'bob')],
  queue: { queued: oldestTask === null ? 0 : 1, oldestTask, oldestWaitSeconds: oldestTask === null ? null : 5 },
});
const get = async (token: string | null): Promise<{ status: number; body: { sample: MonitorSample | null } }> => {
  const r = await app.inject({ method: 'GET', url: '/v1/monitor/sample', headers: token === null ? {} : bearer(token) });
  return { status: r.statusCode, body: r.json() };
};

describe('GET /v1/monitor/sample', () => {
  it('is null before the first sample, then the newest; a token is needed as for any API call', async () => {
    expect(await get('root-token')).toEqual({ status: 200, body: { sample: null } });
    hub.publish(sample(1));
    hub.publish(sample(2));
    expect((await get('root-token')).body.sample?.at).toBe(2);
    expect((await get(null)).status).toBe(401);
  });

  it("shows a user its own tenant's slices only, and the queue's oldest task only when it is theirs", async () => {
    const mine = d.daemon.submit({ command: ['true'], gpus: 0 }, { actor: 'token:alice', role: 'user', tenant: 'alice' });
    hub.publish(sample(3, mine.id));
    const alice = (await get('alice-token')).body.sample!;
    expect(alice.slices.map((s) => s.tenant)).toEqual(['alice']);
    expect(alice.queue).toMatchObject({ queued: 1, oldestTask: mine.id });
    const bob = (await get('bob-token')).body.sample!;
    expect(bob.slices.map((s) => s.task)).toEqual(['bbbbbbbbbbbb']);
    expect(bob.queue).toEqual({ queued: 1, oldestTask: null, oldestWaitSeconds: 5 });
    expect((await get('root-token')).body.sample!.slices).toHaveLength(2);
  });
});

/**
 * Reads the stream at `path` as `token` line by line: `onLine` gets every line so far after each
 * and says when to stop (true). Resolves with the lines read.
 */
function readStream(url: string, path: string, token: string, onLine: (lines: Record<string, unknown>[]) => boolean, onResponse: (res: IncomingMessage) => void = () => {}): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers: bearer(token) }, (res) => {
      onResponse(res);
      let rest = '';
      res.on('data', (b: Buffer) => {
        rest += b.toString();
        for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
          lines.push(JSON.parse(rest.slice(0, nl)) as Record<string, unknown>);
          rest = rest.slice(nl + 1);
          if (onLine(lines)) {
            req.destroy();
            resolve(lines);
            return;
          }
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GET /v1/monitor/stream', () => {
  it('sends the newest sample at once, then each new one, one JSON line each, as the caller may see it', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    hub.publish(sample(10));
    const lines = (await readStream(url, '/v1/monitor/stream', 'bob-token', (read) => {
      if (read.length === 1) hub.publish(sample(11));
      return read.length === 2;
    }, (res) => {
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toContain('application/x-ndjson');
    })) as unknown as MonitorSample[];
    expect(lines.map((l) => [l.at, l.slices.map((s) => s.tenant)])).toEqual([[10, ['bob']], [11, ['bob']]]);
  });

  it("with events=1, interleaves the caller's task events with the samples, each line saying which it is", async () => {
    const url = app.server.listening ? `http://127.0.0.1:${(app.server.address() as { port: number }).port}` : await app.listen({ host: '127.0.0.1', port: 0 });
    hub.publish(sample(20));
    let bobs = '';
    const lines = await readStream(url, '/v1/monitor/stream?events=1', 'bob-token', (read) => {
      if (read.length === 1) {
        // Alice's task first: bob must not hear of it; then bob's own.
        d.daemon.submit({ command: ['true'], gpus: 0 }, { actor: 'token:alice', role: 'user', tenant: 'alice' });
        bobs = d.daemon.submit({ command: ['true'], gpus: 0 }, { actor: 'token:bob', role: 'user', tenant: 'bob' }).id;
      }
      return read.some((l) => (l['event'] as { taskId?: string } | undefined)?.taskId === bobs);
    });
    expect((lines[0]!['sample'] as MonitorSample).at).toBe(20);
    const events = lines.filter((l) => 'event' in l).map((l) => l['event'] as { taskId: string });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.taskId === bobs)).toBe(true);
  });

  it('with events=1, carries each alert the caller may see as it fires or resolves', async () => {
    const alerts = handAlerts();
    const withAlerts = await d.api({ tokens: TEST_TOKENS, samples: hub, alerts });
    const url = await withAlerts.listen({ host: '127.0.0.1', port: 0 });
    hub.publish(sample(30));
    const alert = (id: string, tenant: string): AlertEvent => ({
      id, rule: 'slice-memory', severity: 'warning', state: 'firing', subject: { task: `${tenant}-task`, tenant, gpu: 0 }, value: 0.9, threshold: 0.85, startedAt: 30, resolvedAt: null, summary: `task ${tenant}-task memory`, silenced: false,
    });
    const lines = await readStream(url, '/v1/monitor/stream?events=1', 'bob-token', (read) => {
      // Alice's alert first: bob must not see it; then bob's own.
      if (read.length === 1) ['alice', 'bob'].forEach((t) => alerts.fire(alert(`a-${t}`, t)));
      return read.some((l) => 'alert' in l);
    });
    expect(lines.filter((l) => 'alert' in l).map((l) => (l['alert'] as AlertEvent).id)).toEqual(['a-bob']);
    await withAlerts.close();
  });

  it('skips samples for a reader that does not keep up instead of buffering them, and unsubscribes when closed', () => {
    const source = new SampleHub();
    let listeners = 0;
    const counting = { latest: () => source.latest(), subscribe: (l: (s: MonitorSample) => void) => { listeners++; const off = source.subscribe(l); return () => { listeners--; off(); }; } };
    const big = 'x'.repeat(100 * 1024);
    const stream = sampleStream(counting, () => big);
    for (let i = 0; i < 20; i++) source.publish(sample(i));
    // Nothing reads: at most the backlog plus one line is held.
    expect(stream.writableLength).toBeLessThanOrEqual(SAMPLE_STREAM_BACKLOG_BYTES + big.length + 1);
    expect(listeners).toBe(1);
    stream.destroy();
    return new Promise<void>((resolve) => setImmediate(() => {
      expect(listeners).toBe(0);
      resolve();
    }));
  });
});
