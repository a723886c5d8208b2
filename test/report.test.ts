/**
 * `gpushare report` and `gpushare history` end to end: a real daemon (simulated GPUs) on a Unix
 * socket, two real tasks, samples fed into its hub as the monitor would, then the CLI as a user
 * runs it. The HTML report is opened in headless Chromium and a screenshot saved to
 * build/report/report.png for a person to look at.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type RunningDaemon } from '../src/app/serve.js';
import { Client } from '../src/cli/client.js';
import type { TaskBody } from '../src/contract/schemas.js';
import { fleetSample } from '../src/monitor/history/fixtures.js';
import { loadConfig } from '../src/node/config.js';
import { pino } from 'pino';
import { REPO_ROOT } from './helpers/cli.js';

const run = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(join(tmpdir(), 'gpushare-report-'));
const socket = join(dir, 'api.sock');
let daemon: RunningDaemon;
let tasks: TaskBody[] = [];
/** The newest sample's time. */
let fedUntil = 0;

/** The built CLI, run without blocking this process (the daemon answers from it). */
async function cli(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GPUSHARE_')));
  return run(process.execPath, [`${REPO_ROOT}bin/gpushare.js`, ...args, '--host', socket], { env, timeout: 30_000 });
}

beforeAll(async () => {
  daemon = await serve({ config: loadConfig({ stateDir: join(dir, 'state'), listen: [socket], backend: 'simulated', simulate: '2xH100-80GB', sandbox: 'off', logLevel: 'silent' }, {}), logger: pino({ level: 'silent' }), say: () => {} });
  const client = new Client({ kind: 'unix', path: socket });
  for (const tenant of ['alice', 'bob']) await client.json('POST', '/v1/tenants', { name: tenant });
  for (const [tenant, mem] of [['alice', '8Gi'], ['bob', '20Gi']] as const) tasks.push(await client.json<TaskBody>('POST', '/v1/tasks', { command: ['sleep', '60'], gpus: 1, memory: mem, tenant, cwd: '/' }));
  // Wait until both run (placed on their GPUs).
  for (let i = 0; i < 100 && tasks.some((t) => t.state !== 'running'); i += 1) {
    await new Promise((r) => setTimeout(r, 100));
    tasks = await Promise.all(tasks.map((t) => client.json<TaskBody>('GET', `/v1/tasks/${t.id}`)));
  }
  expect(tasks.map((t) => t.state)).toEqual(['running', 'running']);
  // Ten minutes of samples up to now, one a second, with the two tasks' slices, as the monitor takes them.
  const now = Date.now();
  fedUntil = now;
  for (let t = now - 600_000; t <= now; t += 1000) {
    const s = fleetSample(t, 2, 2, 2, t > now - 60_000 ? 1 : 0);
    daemon.samples.publish({ ...s, slices: s.slices.map((sl, j) => ({ ...sl, task: tasks[j]!.id, tenant: tasks[j]!.tenant as string, gpu: tasks[j]!.gpus![0]!.index })) });
  }
}, 60_000);

afterAll(async () => {
  const client = new Client({ kind: 'unix', path: socket });
  for (const t of tasks) await client.json('POST', `/v1/tasks/${t.id}/kill`, { signal: 'SIGKILL' }).catch(() => undefined);
  await daemon?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('gpushare report against a running daemon', () => {
  it('-o json: per GPU, per tenant, top tasks and waits from what the daemon recorded; its alerts of the window, resolved ones too', async () => {
    const { stdout } = await cli(['report', '--since', '1h', '--format', 'json']);
    const r = JSON.parse(stdout) as { gpus: { index: number; utilization: { mean: number; max: number; points: number } | null }[]; tenants: { tenant: string; tasks: number; gpuSeconds: number; memoryUsedBytes: { max: number } | null }[]; topTasks: { id: string }[]; waits: { started: number; queueLength: { max: number } | null }; alerts: { available: boolean; total: number; list: { id: string }[] } };
    expect(r.gpus.map((g) => g.index)).toEqual([0, 1]);
    // Raw points for the last 10 minutes: about 601 of them, utilization within 0..1.
    expect(r.gpus[0]?.utilization?.points).toBeGreaterThanOrEqual(600);
    expect(r.gpus[0]?.utilization?.max).toBeLessThanOrEqual(1);
    expect(r.tenants.map((t) => t.tenant).sort()).toEqual(['alice', 'bob']);
    expect(r.tenants.every((t) => t.tasks === 1 && t.gpuSeconds > 0 && (t.memoryUsedBytes?.max ?? 0) > 0)).toBe(true);
    expect(r.topTasks.map((t) => t.id).sort()).toEqual(tasks.map((t) => t.id).sort());
    expect(r.waits.started).toBe(2);
    expect(r.waits.queueLength?.max).toBe(1);
    // The daemon's own alerts (the fed samples may cross a rule): every one of the window, resolved or firing.
    expect(r.alerts.available).toBe(true);
    const all = await new Client({ kind: 'unix', path: socket }).json<{ alerts: { id: string; startedAt: number }[] }>('GET', '/v1/alerts?state=all');
    expect(r.alerts.total).toBe(new Set(all.alerts.map((a) => a.id)).size);
  });

  it('-o file.md: Markdown to the file, a line on stderr saying where', async () => {
    const file = join(dir, 'report.md');
    const { stdout, stderr } = await cli(['report', '--since', '1h', '-o', file]);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/md report of 2 tasks on 2 GPUs written to/);
    expect(readFileSync(file, 'utf8')).toMatch(/^# gpushare report: /);
  });

  it('refuses a window that ends before it starts', async () => {
    await expect(cli(['report', '--since', '1h', '--until', '2h'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--until \(2h\) is not after --since \(1h\)/) as unknown });
  });

  it.skipIf(!existsSync(CHROMIUM))('the HTML report opens in Chromium from the disk alone, charts drawn (screenshot: build/report/report.png)', async () => {
    const out = join(REPO_ROOT, 'build', 'report');
    mkdirSync(out, { recursive: true });
    const file = join(out, 'report.html');
    await cli(['report', '--since', '15m', '-o', file]);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1240, height: 900 } });
      const requests: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      await page.goto(`file://${file}`);
      expect(await page.title()).toMatch(/^gpushare report: /);
      expect(await page.locator('svg').count()).toBe(2 * 2 + 1);
      expect(await page.locator('svg polyline.mean').count()).toBe(2 * 2);
      expect(await page.locator('text=GPU-hours per tenant').count()).toBe(1);
      // Nothing fetched but the file itself.
      expect(requests).toEqual([`file://${file}`]);
      await page.screenshot({ path: join(out, 'report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('gpushare history against a running daemon', () => {
  it('prints a sparkline and the points, or the response as JSON', async () => {
    // Raw: the samples fed here are older than the daemon's own sampler's first, so they are kept
    // raw but not rolled up into minutes (a minute once closed is not reopened).
    const { stdout } = await cli(['history', 'gpu_utilization', '--gpu', '1', '--since', '5m']);
    expect(stdout).toMatch(/^gpu_utilization \(GPU 1\), \d{3} points of 1s: [▁▂▃▄▅▆▇█]+ {2}min \d/);
    expect(stdout).toMatch(/TIME\s+MIN\s+MEAN\s+MAX/);
    const json = JSON.parse((await cli(['history', 'slice_memory_used_bytes', '--task', tasks[0]!.id.slice(0, 8), '--since', String(fedUntil - 300_000), '--until', String(fedUntil + 1), '-o', 'json'])).stdout) as { subject: { task: string }; step: number; points: unknown[] };
    expect(json.subject.task).toBe(tasks[0]!.id);
    expect(json.step).toBe(1);
    // The fed samples, and the daemon's own sampler's since it started (the same series).
    expect(json.points.length).toBeGreaterThanOrEqual(301);
  });

  it('refuses a subject the series does not take, before asking the daemon', async () => {
    await expect(cli(['history', 'queue_length', '--gpu', '0'])).rejects.toMatchObject({ stderr: expect.stringMatching(/queue_length takes no --gpu, --task or --tenant, not --gpu/) as unknown });
  });
});
