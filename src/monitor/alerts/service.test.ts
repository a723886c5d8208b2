import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertRule } from '../../contract/alerts.js';
import type { AlertEvent } from '../../contract/monitor.js';
import { openDatabase, type Db } from '../../node/store/db.js';
import { SampleHub } from '../hub.js';
import { gpuSample, memorySample, sample } from './samples.case.js';
import { AlertService, type AlertSettings } from './service.js';
import { AlertStore } from './store.js';

const mem: AlertRule = { name: 'mem', figure: 'gpu_memory_used_ratio', direction: 'above', threshold: 0.85, clear: 0.8, forSeconds: 0, windowSeconds: 0, severity: 'warning' };
const settings = (over: Partial<AlertSettings> = {}): AlertSettings => ({ enabled: true, rules: [mem], webhooks: [], keepResolved: 1000, ...over });
const admin = { actor: 'local:0', role: 'admin' };

let dir: string;
let db: Db;
const services: AlertService[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gs-alerts-'));
  db = openDatabase(join(dir, 'gpushare.db'));
});
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(over: Partial<ConstructorParameters<typeof AlertService>[0]> = {}, clock = { now: 0 }): { hub: SampleHub; service: AlertService; clock: { now: number } } {
  const hub = new SampleHub((err) => {
    throw err;
  });
  const service = new AlertService({ source: hub, store: new AlertStore(db), settings: settings(), hostname: 'node-1', now: () => clock.now, ...over });
  service.start();
  services.push(service);
  return { hub, service, clock };
}

describe('AlertService', () => {
  it('records, lists and streams what fires and resolves; a restart takes firing ones back with their ids', async () => {
    const { hub, service } = start();
    const seen: AlertEvent[] = [];
    service.follow((a) => seen.push(a));
    hub.publish(memorySample(1000, 0.9));
    const [fired] = service.list({});
    expect(fired).toMatchObject({ rule: 'mem', state: 'firing', startedAt: 1000 });
    hub.publish(memorySample(2000, 0.5));
    hub.publish(memorySample(3000, 0.95));
    expect(seen.map((a) => [a.state, a.startedAt])).toEqual([
      ['firing', 1000],
      ['resolved', 1000],
      ['firing', 3000],
    ]);
    expect(service.list({}).map((a) => a.startedAt)).toEqual([3000]);
    expect(service.list({ state: 'resolved' })).toEqual([{ ...fired, state: 'resolved', resolvedAt: 2000 }]);
    expect(service.list({ state: 'all', since: 2500 }).map((a) => a.state)).toEqual(['firing']);
    expect(service.list({ state: 'all' }).map((a) => a.state)).toEqual(['firing', 'resolved']);
    await service.close();

    // The next start: the firing one comes back as it was, and resolves by the samples.
    const { hub: hub2, service: again } = start();
    expect(again.list({ state: 'all' })).toEqual(service.list({ state: 'all' }));
    hub2.publish(memorySample(4000, 0.1));
    expect(again.list({}).length).toBe(0);
    expect(again.list({ state: 'resolved' }).map((a) => a.resolvedAt)).toEqual([4000, 2000]);
  });

  it('keeps only the newest resolved alerts it is told to', () => {
    const { hub } = start({ settings: settings({ keepResolved: 2 }) });
    for (let i = 0; i < 5; i++) {
      hub.publish(memorySample(i * 2000, 0.9));
      hub.publish(memorySample(i * 2000 + 1000, 0.1));
    }
    expect((db.prepare("SELECT resolved_at FROM alerts WHERE state = 'resolved' ORDER BY resolved_at").pluck().all() as number[])).toEqual([7000, 9000]);
  });

  it('marks a GPU with a new XID or ECC fault through onGpuFault, rules or not', () => {
    const faults: unknown[] = [];
    const { hub } = start({ settings: settings({ enabled: false }), onGpuFault: (uuid, reason) => faults.push({ uuid, ...reason }) });
    hub.publish(sample(0, { gpus: [gpuSample({ xidErrors: 0 })] }));
    hub.publish(sample(1000, { gpus: [gpuSample({ xidErrors: 1, lastXid: 48, eccUncorrectedErrors: 1 })] }));
    expect(faults).toEqual([
      { uuid: 'GPU-aaaa', kind: 'xid', code: 48, at: 1000 },
      { uuid: 'GPU-aaaa', kind: 'ecc', code: null, at: 1000 },
    ]);
  });

  it('silences: listed as silenced, kept from webhooks, audited; removal ends them', async () => {
    const bodies: { alerts: { fingerprint: string; status: string }[] }[] = [];
    const server: Server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        bodies.push(JSON.parse(text));
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const audit: unknown[] = [];
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const { hub, service, clock } = start({ settings: settings({ webhooks: [{ url }] }), audit: (by, e) => audit.push({ by: by.actor, ...e }) });
      clock.now = 500;
      const silence = service.addSilence({ matchers: [{ name: 'rule', value: 'mem' }, { name: 'gpu', value: '0' }], until: 10_000, comment: 'maintenance' }, admin);
      expect(silence).toMatchObject({ id: expect.stringMatching(/^[0-9a-f]{12}$/), until: 10_000, createdBy: 'local:0', createdAt: 500, expired: false });
      hub.publish(memorySample(1000, 0.9));
      expect(service.list({})[0]?.silenced).toBe(true);
      expect(service.silences(false).map((s) => s.id)).toEqual([silence.id]);
      clock.now = 2000;
      expect(service.removeSilence(silence.id, admin)).toMatchObject({ until: 2000, expired: true });
      expect(() => service.removeSilence(silence.id, admin)).toThrow(/already ended/);
      expect(() => service.removeSilence('000000000000', admin)).toThrow(/no silence "000000000000"/);
      expect(service.list({})[0]?.silenced).toBe(false);
      expect(service.silences(false)).toEqual([]);
      expect(service.silences(true).map((s) => s.expired)).toEqual([true]);
      // Its resolution is not sent either: the receiver never heard of it firing.
      hub.publish(memorySample(3000, 0.1));
      hub.publish(memorySample(4000, 0.9));
      const deadline = Date.now() + 5000;
      while (bodies.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 100));
      expect(bodies.flatMap((b) => b.alerts.map((a) => a.status))).toEqual(['firing']);
      expect(audit).toEqual([
        { by: 'local:0', action: 'silence.create', target: silence.id, detail: { matchers: silence.matchers, until: 10_000, comment: 'maintenance' } },
        { by: 'local:0', action: 'silence.remove', target: silence.id, detail: {} },
      ]);
      expect(() => service.addSilence({ matchers: [{ name: 'rule', value: 'mem' }], until: 1000, comment: '' }, admin)).toThrow(/is not in the future/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('resolves firing alerts when rules are turned off by a reload', () => {
    const { hub, service } = start();
    hub.publish(memorySample(0, 0.9));
    service.configure(settings({ enabled: false }));
    hub.publish(memorySample(1000, 0.9));
    expect(service.list({ state: 'all' }).map((a) => [a.state, a.resolvedAt])).toEqual([['resolved', 1000]]);
  });
});
