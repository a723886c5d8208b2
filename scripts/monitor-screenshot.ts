/**
 * Dashboard screenshots of a GPU run, where a browser is (the GPU machine has none):
 *
 *   npx tsx scripts/monitor-screenshot.ts REPLAY.tar.gz OUT_DIR
 *
 * REPLAY.tar.gz is what scripts/gpu-check-monitor.sh packs: the daemon's state (its tasks,
 * alerts and history.sqlite) and a stream of the monitor's samples, all from the GPU. A daemon
 * is started here on a copy of that state (simulated backend, its own sampler slowed to once an
 * hour so it adds nothing), and the recorded samples are published into its hub again, one a
 * second with the time of now, so every figure the page shows is the GPU's. Headless Chromium
 * (Debian's, through playwright-core) opens the fleet, GPU 0, the tasks and the alerts and saves
 * a PNG of each in OUT_DIR.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import type { MonitorSample } from '../src/contract/monitor.js';
import { serveWithFlags } from '../src/app/serve.js';

const [archive, outArg] = process.argv.slice(2);
if (archive === undefined || outArg === undefined) {
  process.stderr.write('usage: npx tsx scripts/monitor-screenshot.ts REPLAY.tar.gz OUT_DIR\n');
  process.exit(2);
}
const out = resolve(outArg);
mkdirSync(out, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'gs-replay-'));
execFileSync('tar', ['-xzf', resolve(archive), '-C', dir]);
const samples = readFileSync(join(dir, 'samples.ndjson'), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as MonitorSample);
if (samples.length === 0) throw new Error('no samples in the archive');
const token = 'replay-token';
const port = 17000 + Math.floor(Math.random() * 900);
writeFileSync(join(dir, 'config.json'), JSON.stringify({
  tokens: [{ sha256: createHash('sha256').update(token).digest('hex'), tenant: 'ops', role: 'admin' }],
  monitor: { sampleSeconds: 3600 },
}));
const running = await serveWithFlags({ backend: 'simulated', simulate: '1xH100-80GB', stateDir: join(dir, 'state'), listen: [join(dir, 'api.sock'), `127.0.0.1:${port}`], config: join(dir, 'config.json'), sandbox: 'off', logLevel: 'warn' });
let i = 0;
const replay = (): void => {
  const s = samples[i % samples.length] as MonitorSample;
  running.samples.publish({ ...s, at: Date.now() });
  i += 1;
};
for (let k = 0; k < Math.min(10, samples.length); k += 1) replay();
const timer = setInterval(replay, 1000);
const browser = await chromium.launch({ executablePath: process.env['GPUSHARE_CHROMIUM'] ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`http://127.0.0.1:${port}/ui/`);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('.gpu-card');
  await new Promise((r) => setTimeout(r, 3000));
  for (const [name, hash] of [['fleet', ''], ['gpu-0', '#/gpu/0'], ['tasks', '#/tasks'], ['alerts', '#/alerts']] as const) {
    await page.goto(`http://127.0.0.1:${port}/ui/${hash}`);
    await new Promise((r) => setTimeout(r, 4000));
    await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
    process.stdout.write(`${join(out, `${name}.png`)}\n`);
  }
} finally {
  clearInterval(timer);
  await browser.close();
  await running.close();
  rmSync(dir, { recursive: true, force: true });
}
