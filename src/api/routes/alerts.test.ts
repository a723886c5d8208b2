/** /v1/alerts and /v1/silences: who sees which alert, silences are the admin's and audited, follow streams NDJSON. */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { bearer as auth, errorOf, inProcessDaemon, TEST_TOKENS } from '../../../test/helpers/api.js';
import type { AlertEvent } from '../../contract/monitor.js';
import { SampleHub } from '../../monitor/hub.js';
import { DEFAULT_ALERT_RULES } from '../../monitor/alerts/rules.js';
import { gpuSample, sample, sliceSample, GIB } from '../../monitor/alerts/samples.case.js';
import { AlertService } from '../../monitor/alerts/service.js';
import { AlertStore } from '../../monitor/alerts/store.js';

const gs = inProcessDaemon();
const hub = new SampleHub();
const alerts = new AlertService({
  source: hub,
  store: new AlertStore(gs.db),
  settings: { enabled: true, rules: DEFAULT_ALERT_RULES.filter((r) => r.name === 'gpu-temperature-critical' || r.name === 'slice-memory-critical').map((r) => ({ ...r, forSeconds: 0 })), webhooks: [], keepResolved: 100 },
  hostname: 'node-1',
  audit: (by, entry) => gs.daemon.recordRefusal({ actor: by.actor, role: by.role as 'admin' | 'user' }, { ...entry, result: 'ok' }),
});
alerts.start();
const tcp = await gs.api({ tokens: TEST_TOKENS, alerts });
await tcp.listen({ host: '127.0.0.1', port: 0 });
const port = (tcp.server.address() as AddressInfo).port;
const bare = await gs.api({ tokens: null });
afterAll(async () => {
  await alerts.close();
  await gs.close();
});

const get = (token: string, url: string) => tcp.inject({ method: 'GET', url, headers: auth(token) });
const listed = async (token: string, url = '/v1/alerts'): Promise<AlertEvent[]> => ((await get(token, url)).json() as { alerts: AlertEvent[] }).alerts;
const hot = (at: number, temp: number, slices = [sliceSample({ task: 'aaaaaaaaaaaa', tenant: 'alice', memoryUsedBytes: 9.9 * GIB }), sliceSample({ task: 'bbbbbbbbbbbb', tenant: 'bob', memoryUsedBytes: 9.9 * GIB })]) =>
  sample(at, { gpus: [gpuSample({ temperatureCelsius: temp })], slices });

describe('GET /v1/alerts', () => {
  it('lists firing alerts: all to an admin; a user its tenant\'s and the GPUs\'', async () => {
    hub.publish(hot(1000, 95));
    expect((await listed('root-token')).map((a) => a.rule).sort()).toEqual(['gpu-temperature-critical', 'slice-memory-critical', 'slice-memory-critical']);
    const alice = await listed('alice-token');
    expect(alice.map((a) => [a.rule, a.subject.tenant ?? null]).sort()).toEqual([
      ['gpu-temperature-critical', null],
      ['slice-memory-critical', 'alice'],
    ]);
  });

  it('lists resolved ones by state and since, and refuses a bad query', async () => {
    hub.publish(hot(2000, 50, [sliceSample({ task: 'aaaaaaaaaaaa', tenant: 'alice', memoryUsedBytes: 9.9 * GIB })]));
    expect((await listed('root-token', '/v1/alerts?state=resolved')).map((a) => [a.rule, a.resolvedAt])).toEqual([
      ['slice-memory-critical', 2000],
      ['gpu-temperature-critical', 2000],
    ]);
    expect((await listed('alice-token', '/v1/alerts?state=resolved')).map((a) => a.rule)).toEqual(['gpu-temperature-critical']);
    expect((await listed('root-token', '/v1/alerts?state=all&since=1500')).length).toBe(2);
    const bad = await get('root-token', '/v1/alerts?state=sideways');
    expect(bad.statusCode).toBe(400);
  });

  it('says so where the daemon keeps no alerts', async () => {
    const r = await bare.inject({ method: 'GET', url: '/v1/alerts' });
    expect(r.statusCode).toBe(404);
    expect(errorOf(r).message).toBe('this daemon keeps no alerts');
  });

  it('follow=1 streams the listed ones, then each as it fires or resolves, as NDJSON', async () => {
    const lines: AlertEvent[] = [];
    const req = request({ host: '127.0.0.1', port, path: '/v1/alerts?follow=1', headers: auth('alice-token') });
    const done = new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        expect(res.headers['content-type']).toMatch(/application\/x-ndjson/);
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
          const parts = text.split('\n');
          text = parts.pop() ?? '';
          for (const p of parts) lines.push(JSON.parse(p) as AlertEvent);
          if (lines.length >= 3) resolve();
        });
      });
      req.on('error', reject);
    });
    req.end();
    for (let i = 0; i < 200 && alerts['listeners'].size === 0; i++) await new Promise((r) => setTimeout(r, 10));
    hub.publish(hot(3000, 96, [sliceSample({ task: 'bbbbbbbbbbbb', tenant: 'bob', memoryUsedBytes: 9.9 * GIB })]));
    await done;
    req.destroy();
    // Alice's slice alert (still firing, listed first), then the GPU's; bob's never reaches her.
    expect(lines.map((a) => [a.rule, a.state, a.subject.tenant ?? null])).toEqual([
      ['slice-memory-critical', 'firing', 'alice'],
      ['slice-memory-critical', 'resolved', 'alice'],
      ['gpu-temperature-critical', 'firing', null],
    ]);
  });
});

describe('/v1/silences', () => {
  it('an admin silences and ends; users may list but not change; both audited', async () => {
    const until = Date.now() + 3_600_000;
    const refused = await tcp.inject({ method: 'POST', url: '/v1/silences', headers: auth('alice-token'), payload: { matchers: [{ name: 'rule', value: 'gpu-temperature-critical' }], until } });
    expect(refused.statusCode).toBe(403);
    const made = await tcp.inject({ method: 'POST', url: '/v1/silences', headers: auth('root-token'), payload: { matchers: [{ name: 'rule', value: 'gpu-temperature-critical' }], until: new Date(until).toISOString(), comment: 'fan swap' } });
    expect(made.statusCode).toBe(201);
    const silence = made.json() as { id: string; until: number; comment: string };
    expect(silence).toMatchObject({ until, comment: 'fan swap', createdBy: expect.stringMatching(/ops|token/), expired: false });
    expect((await listed('alice-token')).find((a) => a.rule === 'gpu-temperature-critical')?.silenced).toBe(true);
    expect(((await get('alice-token', '/v1/silences')).json() as { silences: { id: string }[] }).silences.map((s) => s.id)).toEqual([silence.id]);
    expect((await tcp.inject({ method: 'DELETE', url: `/v1/silences/${silence.id}`, headers: auth('bob-token') })).statusCode).toBe(403);
    const ended = await tcp.inject({ method: 'DELETE', url: `/v1/silences/${silence.id}`, headers: auth('root-token') });
    expect(ended.statusCode).toBe(200);
    expect(ended.json()).toMatchObject({ id: silence.id, expired: true });
    expect((await tcp.inject({ method: 'DELETE', url: `/v1/silences/${silence.id}`, headers: auth('root-token') })).statusCode).toBe(409);
    expect((await tcp.inject({ method: 'DELETE', url: '/v1/silences/nothex', headers: auth('root-token') })).statusCode).toBe(400);
    const empty = await tcp.inject({ method: 'POST', url: '/v1/silences', headers: auth('root-token'), payload: { matchers: [], until } });
    expect(errorOf(empty).message).toMatch(/at least one matcher/);
    const audit = gs.daemon.auditLog(0, 100).filter((a) => a.action.startsWith('silence.'));
    expect(audit.map((a) => [a.action, a.result])).toEqual([
      ['silence.create', 'GS_ERR_FORBIDDEN'],
      ['silence.create', 'ok'],
      ['silence.remove', 'GS_ERR_FORBIDDEN'],
      ['silence.remove', 'ok'],
      ['silence.remove', 'GS_ERR_CONFLICT'],
      ['silence.remove', 'GS_ERR_INVALID_ARGUMENT'],
      ['silence.create', 'GS_ERR_INVALID_ARGUMENT'],
    ]);
  });
});
