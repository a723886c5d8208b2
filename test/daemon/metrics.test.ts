import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/api.js';
import { parseExposition, value, type ExposedSample } from '../helpers/exposition.js';
import { dashboardQueries } from '../helpers/grafana.js';
import { regionTool } from '../../src/gpu/region/native.js';
import { Harness } from './harness.js';

const GiB = 2 ** 30;
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const h = new Harness();
let port = 0;
let tasks: string[] = [];

interface Scrape {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** GET /metrics over the daemon's Unix socket (the local admin), or over TCP with a token. */
function scrape(options: { tcpToken?: string | null; accept?: string } = {}): Promise<Scrape> {
  const headers: Record<string, string> = {};
  if (options.accept !== undefined) headers['accept'] = options.accept;
  if (typeof options.tcpToken === 'string') headers['authorization'] = `Bearer ${options.tcpToken}`;
  const where = options.tcpToken === undefined ? { socketPath: h.socket } : { host: '127.0.0.1', port };
  return new Promise((resolve, reject) => {
    const req = request({ ...where, path: '/metrics', method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function samples(): Promise<ExposedSample[]> {
  const r = await scrape();
  expect(r.status).toBe(200);
  return parseExposition(r.body);
}

async function until(ok: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`not so after ${timeoutMs} ms:\n${h.log}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  port = await freePort();
  const config = join(h.dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      tokens: [
        { sha256: sha('user-secret'), tenant: 'ml', role: 'user' },
        { sha256: sha('prom-secret'), tenant: 'ops', role: 'admin' },
      ],
      tenants: [{ name: 'ml', quota: { gpus: 4, memory: '100Gi' } }],
      monitor: { sampleSeconds: 0.2 },
      metrics: { compat: ['dcgm', 'hami'] },
    }),
  );
  await h.start(['--config', config], {}, '2xH100-80GB', [`127.0.0.1:${port}`]);
  // The first task writes its region as CUDA processes under libgpushare would: region_fixture's
  // two processes stay attached while their stdin (sleep's pipe) is open.
  tasks = [
    await h.detach(['--tenant', 'ml', '--mem', '8Gi', '--cores', '30', '--', 'sh', '-c', `sleep 60 | exec ${regionTool('region_fixture')} "$GPUSHARE_REGION"`]),
    await h.detach(['--tenant', 'ml', '--gpus', '2', '--mem', '4Gi', '--', 'sleep', '60']),
  ];
  for (const id of tasks) await h.waitFor(id, (t) => t.state === 'running');
  // The next sample after both started shows their slices.
  await until(async () => (await samples()).filter((s) => s.name === 'gpushare_slice_memory_limit_bytes').length === 3);
  await until(async () => (await samples()).filter((s) => s.name === 'gpushare_slice_compute_share_ratio').length === 1);
});
afterAll(async () => {
  await h.cleanup();
});

describe('GET /metrics from a real daemon', () => {
  it('shows every GPU and every slice of the running tasks', async () => {
    const s = await samples();
    const gpus = s.filter((x) => x.name === 'gpushare_gpu_memory_total_bytes');
    expect(gpus.map((x) => x.labels['gpu'])).toEqual(['0', '1']);
    expect(gpus[0]!.labels).toMatchObject({ model: 'H100-80GB', uuid: expect.stringMatching(/^GPU-/) as string });
    expect(gpus[0]!.labels['hostname']).toBeTruthy();
    // The simulated backend reads energy, clocks and the rest; nothing it gives is missing.
    for (const name of ['gpushare_gpu_energy_joules_total', 'gpushare_gpu_sm_clock_hertz', 'gpushare_gpu_power_watts', 'gpushare_gpu_xid_errors_total', 'gpushare_gpu_pcie_replays_total']) {
      expect(s.filter((x) => x.name === name)).toHaveLength(2);
    }
    const limits = s.filter((x) => x.name === 'gpushare_slice_memory_limit_bytes');
    expect(limits.map((x) => [x.labels['task'], x.labels['tenant'], x.value]).sort()).toEqual(
      [[tasks[0], 'ml', 8 * GiB], [tasks[1], 'ml', 4 * GiB], [tasks[1], 'ml', 4 * GiB]].sort(),
    );
    expect(value(s, 'gpushare_slice_compute_limit_ratio', limits.find((x) => x.labels['task'] === tasks[0])!.labels)).toBe(0.3);
    // The region's accounting, to the byte (region_fixture's device 0: src/gpu/region/reader.test.ts).
    const first = limits.find((x) => x.labels['task'] === tasks[0])!.labels;
    expect(value(s, 'gpushare_slice_memory_used_bytes', first)).toBe(3_000_000 + 1_048_576 + 65_536);
    expect(value(s, 'gpushare_slice_memory_bytes', { ...first, kind: 'context' })).toBe(3_000_000);
    expect(value(s, 'gpushare_slice_memory_bytes', { ...first, kind: 'alloc' })).toBe(1_048_576 + 65_536);
    expect(value(s, 'gpushare_slice_compute_share_ratio', first)).toBe(0.5);
    expect(value(s, 'gpushare_slice_kernel_launches_total', first)).toBe(10);
    // `sleep` never touches CUDA: its region does not exist, so nothing is used and no share is measured.
    expect(s.filter((x) => x.name === 'gpushare_slice_memory_used_bytes' && x.labels['task'] === tasks[1]).map((x) => x.value)).toEqual([0, 0]);
    expect(s.filter((x) => x.name === 'gpushare_slice_compute_share_ratio' && x.labels['task'] === tasks[1])).toEqual([]);
    expect(value(s, 'gpushare_tenant_usage', { tenant: 'ml', resource: 'memory_bytes' })).toBe(16 * GiB);
    expect(value(s, 'gpushare_tenant_quota', { tenant: 'ml', resource: 'memory_bytes' })).toBe(100 * GiB);
    expect(value(s, 'gpushare_queue_length', {})).toBe(0);
  });

  it('counts what happened: queue waits of the started tasks, scheduling decisions and API requests by route', async () => {
    const s = await samples();
    expect(value(s, 'gpushare_queue_wait_seconds_count', {})).toBe(2);
    expect(value(s, 'gpushare_scheduling_decisions_total', { outcome: 'start' })).toBe(2);
    expect(value(s, 'gpushare_scheduling_pass_seconds_count', {})).toBeGreaterThanOrEqual(2);
    expect(value(s, 'gpushare_api_request_seconds_count', { route: '/v1/tasks/:id', method: 'GET', status_class: '2xx' })).toBeGreaterThanOrEqual(2);
  });

  it('answers OpenMetrics to a scraper that asks for it', async () => {
    const r = await scrape({ accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' });
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^application\/openmetrics-text; version=1\.0\.0/);
    expect(r.body.endsWith('# EOF\n')).toBe(true);
    expect(parseExposition(r.body).some((x) => x.name === 'gpushare_gpu_energy_joules_total')).toBe(true);
  });

  it('needs an admin bearer token on TCP, as the rest of the API', async () => {
    expect((await scrape({ tcpToken: null })).status).toBe(401);
    const user = await scrape({ tcpToken: 'user-secret' });
    expect(user.status).toBe(403);
    expect(user.body).toMatch(/reading \/metrics needs the admin role/);
    const admin = await scrape({ tcpToken: 'prom-secret' });
    expect(admin.status).toBe(200);
    expect(admin.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('adds the dcgm-exporter and HAMi names the config asked for', async () => {
    const s = await samples();
    expect(s.filter((x) => x.name === 'DCGM_FI_DEV_FB_USED')).toHaveLength(2);
    expect(s.filter((x) => x.name === 'hami_vgpu_memory_limit_bytes').map((x) => x.value).sort()).toEqual([4 * GiB, 4 * GiB, 8 * GiB]);
    expect(s.filter((x) => x.name === 'hami_vgpu_memory_used_bytes').map((x) => x.value).sort((a, b) => a - b)).toEqual([0, 0, 3_000_000 + 1_048_576 + 65_536]);
  });

  it("emits every metric the Grafana dashboard's queries use (deploy/grafana/gpushare.json)", async () => {
    const dashboard = dashboardQueries();
    const names = [...dashboard.panels.flatMap((p) => p.targets.flat()), ...dashboard.variables.flatMap((v) => v.metrics)];
    const used = new Set(names);
    expect(used.size).toBeGreaterThan(25);
    // Each name as a sample name of the scrape (a histogram's _bucket/_sum/_count are sample names).
    const emitted = new Set((await samples()).map((x) => x.name));
    expect([...used].filter((n) => !emitted.has(n))).toEqual([]);
  });
});
