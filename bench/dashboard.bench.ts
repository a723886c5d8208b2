// The dashboard (issue 19 budgets): first meaningful paint <= 1 s on loopback, and what an open
// dashboard costs the daemon: < 1% of a core per page.
//
// A real `gpushare serve` (built dist/, simulated backend with 8 H100s, its monitor sampling each
// second, TCP with a token) runs 16 tasks (a slice each, 2 per GPU). Headless Chromium
// (/usr/bin/chromium, or GPUSHARE_CHROMIUM) opens the dashboard with the token already given.
//
// Paint: from navigation to the first GPU card on screen (the fleet's first meaningful content:
// it needs the page, its script and /v1/gpus), read in the page as performance.now() when the
// card appears; ROUNDS fresh tabs, median and worst.
// Cost: the daemon's CPU time (utime + stime of its process, /proc) over WINDOW s with no page
// open, then with PAGES pages open on the fleet and a GPU's view (live charts), interleaved
// ROUNDS times; the medians' difference per page, as a share of one core. The daemon's own
// sampling is in both and cancels out.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';

const ROUNDS = Number(process.env['DASH_BENCH_ROUNDS'] ?? 5);
const WINDOW = Number(process.env['DASH_BENCH_WINDOW'] ?? 10);
const PAGES = Number(process.env['DASH_BENCH_PAGES'] ?? 1);
const root = fileURLToPath(new URL('../', import.meta.url));
const TOKEN = 'bench-secret';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ticks = Number(process.env['CLK_TCK'] ?? 100);

/** CPU seconds the process has used (user + system), from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gpushare-dash-bench-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const url = `http://127.0.0.1:${port}`;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ tokens: [{ sha256: createHash('sha256').update(TOKEN).digest('hex'), tenant: 'ops', role: 'admin' }] }));
  const daemon: ChildProcess = spawn(process.execPath, [join(root, 'bin/gpushare.js'), 'serve', '--backend', 'simulated', '--simulate', '8xH100-80GB', '--state-dir', join(dir, 'state'),
    '--listen', join(dir, 'api.sock'), '--listen', `127.0.0.1:${port}`, '--config', join(dir, 'config.json'), '--sandbox', 'off', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  daemon.stdout?.on('data', (b: Buffer) => (log += b.toString()));
  daemon.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const tasks: string[] = [];
  try {
    for (let i = 0; i < 100 && !log.includes('dashboard at'); i++) await sleep(100);
    if (!log.includes('dashboard at')) throw new Error(`daemon did not start:\n${log}`);
    for (let i = 0; i < 16; i++) {
      const r = await fetch(`${url}/v1/tasks`, { method: 'POST', headers: auth, body: JSON.stringify({ command: ['sleep', '3600'], gpus: 1, memory: '30Gi', compute: 40 }) });
      if (r.status !== 201) throw new Error(`submit: ${r.status} ${await r.text()}`);
      tasks.push(((await r.json()) as { id: string }).id);
    }
    await sleep(2000);
    const browser = await chromium.launch({ executablePath: process.env['GPUSHARE_CHROMIUM'] ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript({ content: `sessionStorage.setItem('gpushare.token', ${JSON.stringify(TOKEN)})` });

    const paints: number[] = [];
    for (let i = 0; i < ROUNDS + 1; i++) {
      const page = await context.newPage();
      await page.goto(`${url}/ui/`);
      await page.waitForSelector('.gpu-card .slices li a');
      const at = await page.evaluate(() => performance.now());
      if (i > 0) paints.push(at); // the first warms the daemon's caches and the browser's
      await page.close();
    }

    const idle: number[] = [];
    const open: number[] = [];
    const measure = async (): Promise<number> => {
      const before = cpuSeconds(daemon.pid!);
      await sleep(WINDOW * 1000);
      return (cpuSeconds(daemon.pid!) - before) / WINDOW;
    };
    for (let round = 0; round < ROUNDS; round++) {
      idle.push(await measure());
      const pages: Page[] = [];
      for (let p = 0; p < PAGES; p++) {
        const page = await context.newPage();
        await page.goto(`${url}/ui/#/gpu/${p % 8}`);
        await page.waitForSelector('.chart canvas');
        pages.push(page);
      }
      await sleep(1000); // the page's start (its first fetches) is not its steady cost
      open.push(await measure());
      for (const page of pages) await page.close();
    }
    await browser.close();
    const perPage = (median(open) - median(idle)) / PAGES;
    console.log(`first meaningful paint (navigation to the first GPU card with its slices), ${ROUNDS} tabs: median ${median(paints).toFixed(0)} ms, worst ${Math.max(...paints).toFixed(0)} ms (budget 1000 ms)`);
    console.log(`daemon CPU, ${ROUNDS} interleaved rounds of ${WINDOW} s: no page ${(median(idle) * 100).toFixed(2)}% of a core (rounds ${idle.map((x) => (x * 100).toFixed(2)).join(', ')}); ${PAGES} page(s) open ${(median(open) * 100).toFixed(2)}% (rounds ${open.map((x) => (x * 100).toFixed(2)).join(', ')})`);
    console.log(`an open dashboard costs the daemon ${(perPage * 100).toFixed(2)}% of a core (budget < 1%)`);
  } finally {
    // A daemon leaves its tasks running when it stops: they go first.
    for (const id of tasks) await fetch(`${url}/v1/tasks/${id}/kill`, { method: 'POST', headers: auth, body: JSON.stringify({ signal: 'SIGKILL' }) }).catch(() => undefined);
    await sleep(500);
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
