/**
 * `gpushare serve` as a user starts it (a child process, TCP with a token): it prints the
 * dashboard's URL, serves the page there without a token, and its monitor feeds the page's
 * sample endpoints.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MonitorSample } from '../../src/contract/monitor.js';
import { Harness } from '../daemon/harness.js';
import { freePort } from '../helpers/api.js';
import { ensureWebBuild } from './fixture.js';

const h = new Harness();
let url = '';
const auth = { authorization: 'Bearer web-secret' };

beforeAll(async () => {
  ensureWebBuild();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const config = join(h.dir, 'config.json');
  writeFileSync(config, JSON.stringify({ tokens: [{ sha256: createHash('sha256').update('web-secret').digest('hex'), tenant: 'ops', role: 'admin' }] }));
  await h.start(['--config', config], {}, undefined, [`127.0.0.1:${port}`]);
});
afterAll(() => h.cleanup());

describe('gpushare serve and its dashboard', () => {
  it('prints the dashboard URL of its TCP listener', () => {
    expect(h.log).toContain(`gpushare serve: dashboard at ${url}/ui/`);
  });

  it('serves the built page there without a token, and its scripts', async () => {
    const page = await fetch(`${url}/ui/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const js = await fetch(`${url}/ui/${script}`);
    expect([js.status, js.headers.get('cache-control')]).toEqual([200, 'public, max-age=31536000, immutable']);
  });

  it("streams the monitor's samples of this daemon's GPUs to a caller with a token", async () => {
    expect((await fetch(`${url}/v1/monitor/sample`)).status).toBe(401);
    const res = await fetch(`${url}/v1/monitor/stream`, { headers: auth });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (text.split('\n').length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    await reader.cancel();
    const samples = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as MonitorSample);
    expect(samples.length).toBeGreaterThanOrEqual(2);
    expect(samples[1]!.at).toBeGreaterThan(samples[0]!.at);
    expect(samples[0]!.gpus.map((g) => g.model)).toEqual(['H100-80GB']);
    const latest = (await (await fetch(`${url}/v1/monitor/sample`, { headers: auth })).json()) as { sample: MonitorSample };
    expect(latest.sample.gpus).toHaveLength(1);
  });
});
