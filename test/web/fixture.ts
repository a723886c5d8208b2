/**
 * What the browser tests drive: a real daemon (simulated backend, real tasks, its API on a TCP
 * port of 127.0.0.1 behind TEST_TOKENS), the dashboard built into dist/web, and a sample feed
 * made from the daemon's own GPUs and slices (a hand-made SampleSource, as the monitor's sampler
 * would publish, with made-up figures the simulated backend does not have), alerts fired by hand
 * (test/helpers/alerts.ts), and headless Chromium.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { GpuSample, MonitorSample, SliceSample } from '../../src/contract/monitor.js';
import { SampleHub } from '../../src/monitor/hub.js';
import { handAlerts, type HandAlerts } from '../helpers/alerts.js';
import { inProcessDaemon, TEST_TOKENS, type InProcessDaemon } from '../helpers/api.js';
import { REPO_ROOT } from '../helpers/cli.js';

export const SCREENSHOTS = join(REPO_ROOT, 'build', 'screenshots');
const CHROMIUM = process.env['GPUSHARE_CHROMIUM'] ?? '/usr/bin/chromium';

/** The dashboard's build: dist/web from `npm run build`, or built now (about 3 s) when missing. */
export function ensureWebBuild(): void {
  if (existsSync(join(REPO_ROOT, 'dist', 'web', 'index.html'))) return;
  const r = spawnSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`vite build failed:\n${r.stdout}\n${r.stderr}`);
}

export interface Dashboard {
  readonly d: InProcessDaemon;
  readonly url: string;
  readonly hub: SampleHub;
  /** The daemon's alerts: none until a test fires one. */
  readonly alerts: HandAlerts;
  readonly browser: Browser;
  /** A new tab (its own sessionStorage), already holding `token` when one is given. */
  page(token?: string): Promise<Page>;
  /** `count` tabs of one browser window (one connection pool), each holding `token`. */
  tabs(token: string, count: number): Promise<Page[]>;
  shot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startDashboard(periodMs = 250): Promise<Dashboard> {
  ensureWebBuild();
  mkdirSync(SCREENSHOTS, { recursive: true });
  const d = inProcessDaemon();
  const hub = new SampleHub();
  const alerts = handAlerts();
  const app = await d.api({ tokens: TEST_TOKENS, samples: hub, alerts });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  let tick = 0;
  const feed = setInterval(() => hub.publish(sampleOf(d, tick++)), periodMs);
  hub.publish(sampleOf(d, tick++));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  return {
    d,
    url,
    hub,
    alerts,
    browser,
    async page(token) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      if (token !== undefined) await context.addInitScript({ content: `sessionStorage.setItem('gpushare.token', ${JSON.stringify(token)})` });
      return context.newPage();
    },
    async tabs(token, count) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      await context.addInitScript({ content: `sessionStorage.setItem('gpushare.token', ${JSON.stringify(token)})` });
      return Promise.all(Array.from({ length: count }, () => context.newPage()));
    },
    async shot(page, name) {
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
    },
    async close() {
      clearInterval(feed);
      await browser.close();
      await d.close();
    },
  };
}

/** A sample of the daemon as it is now: its GPUs and slices, with figures that move over time. */
function sampleOf(d: InProcessDaemon, tick: number): MonitorSample {
  const wave = (phase: number): number => 0.5 + 0.4 * Math.sin((tick + phase) / 6);
  const gpus = d.daemon.gpus();
  const slices: SliceSample[] = gpus.flatMap((g) =>
    g.slices.flatMap((s, i) => {
      if (s.taskId === null || s.tenant === null) return [];
      const used = Math.round(s.memoryBytes * 0.6 * wave(i * 5));
      return [{
        task: s.taskId, tenant: s.tenant, gpu: g.index, uuid: g.uuid, state: 'running' as const, memoryLimitBytes: s.memoryBytes, memoryUsedBytes: used,
        memoryByKind: { context: 0, alloc: used, vmm: 0, array: 0, pool: 0, host: 0, graph: 0 }, computeLimit: s.computeMilli > 0 ? s.computeMilli / 1000 : null,
        computeShare: 0.3 * wave(i * 3), busySeconds: tick, throttledSeconds: 0, kernelLaunches: tick * 100, kubernetes: null,
      }];
    }),
  );
  const gpuSamples: GpuSample[] = gpus.map((g) => {
    const used = slices.filter((s) => s.gpu === g.index).reduce((sum, s) => sum + s.memoryUsedBytes, 0);
    return {
      index: g.index, uuid: g.uuid, model: g.model, health: 'ok', cordoned: false, memoryTotalBytes: g.memoryTotalBytes, memoryUsedBytes: used, memoryFreeBytes: g.memoryTotalBytes - used,
      memoryReservedBytes: null, utilizationGpu: slices.length === 0 ? 0 : wave(0), utilizationMemory: null, clockSmHz: 1.98e9, clockMemoryHz: 2.6e9, temperatureCelsius: 40 + 20 * wave(2),
      powerWatts: 100 + 400 * wave(1), powerLimitWatts: 700, energyJoules: tick * 300, throttleReasons: [], eccCorrectedErrors: 0, eccUncorrectedErrors: 0, xidErrors: 0, lastXid: null, pcieReplays: 0,
    };
  });
  const queued = d.daemon.list(false).filter((t) => t.state === 'queued');
  const oldest = queued.sort((a, b) => a.submittedAt - b.submittedAt)[0];
  return { at: Date.now(), hostname: 'test-node', gpus: gpuSamples, slices, queue: { queued: queued.length, oldestTask: oldest?.id ?? null, oldestWaitSeconds: oldest === undefined ? null : (Date.now() - oldest.submittedAt) / 1000 } };
}
