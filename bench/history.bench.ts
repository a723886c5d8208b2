// History (issue 19): the budget is a range query of 1 h at 1 s for one GPU <= 20 ms. Also: what
// recording one sample costs the sampler's tick, and the store's size on disk, both for 8 GPUs
// and 64 slices (the /metrics budget's fleet; 16 tenants).
//
// Setup: a history.sqlite in a temporary directory filled with 1 h 5 min of samples, one a second
// (8 x 4 GPU series + 64 x 2 task series + 16 x 2 tenant series + the queue = 193 series). Then, in
// interleaved rounds, the same query three ways: the store's own range() (the SQLite read and the
// points), GET /v1/history over loopback HTTP through the real API (fastify, validation, JSON),
// and, as a floor, GET /v1/gpus on the same API. Medians and p99 over all rounds.
//
// Then 7 days at one sample a minute into a second store (raw pruned to its hour, minutes kept)
// for the bytes a minute row costs on disk; an hour row has the same layout.
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildApi } from '../src/api/server.js';
import { openBackend } from '../src/gpu/open.js';
import { fleetSample } from '../src/monitor/history/fixtures.js';
import { HistoryStore } from '../src/monitor/history/store.js';
import { Daemon } from '../src/node/daemon.js';
import { findNativePaths } from '../src/node/launcher.js';
import { openDatabase } from '../src/node/store/db.js';
import { TaskStore } from '../src/node/store/tasks.js';

const GPUS = 8;
const SLICES = 64;
const TENANTS = 16;
const ROUNDS = Number(process.env['HISTORY_BENCH_ROUNDS'] ?? 30);
const PER_ROUND = 10;

const dir = mkdtempSync(join(tmpdir(), 'gpushare-history-bench-'));
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;
const ms = (ns: bigint): number => Number(ns) / 1e6;

const store = new HistoryStore(join(dir, 'history.sqlite'));
const now = Date.now();
const start = now - 65 * 60_000;
const recordMs: number[] = [];
for (let t = start; t <= now; t += 1000) {
  const sample = fleetSample(t, GPUS, SLICES, TENANTS, 3);
  const t0 = process.hrtime.bigint();
  store.record(sample);
  recordMs.push(ms(process.hrtime.bigint() - t0));
}
const size = store.size();

const { backend } = openBackend({ backend: 'simulated', simulate: '8xH100-80GB' });
const db = openDatabase(join(dir, 'gpushare.db'));
const daemon = new Daemon({ stateDir: dir, backend, store: new TaskStore(db), logger: pino({ level: 'silent' }), native: findNativePaths(), policy: 'binpack', killGraceMs: 1000 });
const app = await buildApi({ daemon, logger: pino({ level: 'silent' }), tokens: null, backend, history: store });
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function get(path: string): Promise<{ ms: number; bytes: number; status: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let bytes = 0;
      res.on('data', (b: Buffer) => (bytes += b.length));
      res.on('end', () => resolve({ ms: ms(process.hrtime.bigint() - t0), bytes, status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

const HISTORY_PATH = '/v1/history?series=gpu_utilization&gpu=3&since=1h';
const runs: Record<'store' | 'api' | 'gpus' | 'storeCpu' | 'apiCpu', number[]> = { store: [], api: [], gpus: [], storeCpu: [], apiCpu: [] };
/** CPU time this process spent (user + system), ms: server and client both run here, so it is the work a query costs, whatever else holds the cores. */
const cpuMs = (since: NodeJS.CpuUsage): number => { const u = process.cpuUsage(since); return (u.user + u.system) / 1000; };
let points = 0;
let bodyBytes = 0;
for (let w = 0; w < 20; w += 1) await get(HISTORY_PATH); // warm-up: JIT, SQLite page cache
for (let round = 0; round < ROUNDS; round += 1) {
  for (let i = 0; i < PER_ROUND; i += 1) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const t = Date.now();
    points = store.range({ series: 'gpu_utilization', subject: { gpu: 3 }, from: t - 3_600_000, to: t, stepMs: 0, now: t }).points.length;
    runs.store.push(ms(process.hrtime.bigint() - t0));
    runs.storeCpu.push(cpuMs(c0));
    const c1 = process.cpuUsage();
    const a = await get(HISTORY_PATH);
    runs.apiCpu.push(cpuMs(c1));
    if (a.status !== 200) throw new Error(`GET ${HISTORY_PATH}: ${a.status}`);
    runs.api.push(a.ms);
    bodyBytes = a.bytes;
    runs.gpus.push((await get('/v1/gpus')).ms);
  }
}
await app.close();
agent.destroy();

// A week of minutes, for a minute row's bytes.
const week = new HistoryStore(join(dir, 'week.sqlite'));
const weekStart = now - 7 * 24 * 3_600_000;
for (let t = weekStart; t <= now; t += 60_000) week.record(fleetSample(t, GPUS, SLICES, TENANTS, 3));
const weekSize = week.size();
week.close();
store.close();
daemon.close();
db.close();
backend.close();
rmSync(dir, { recursive: true, force: true });

const series = 4 * GPUS + 2 * SLICES + 2 * TENANTS + 1;
const rawBytesPerRow = size.bytes / (size.raw + size.minute + size.hour);
const aggBytesPerRow = (weekSize.bytes - weekSize.raw * rawBytesPerRow) / (weekSize.minute + weekSize.hour);
const bound = series * (3_780 * rawBytesPerRow + (10_080 + 60 + 2_161) * aggBytesPerRow);
const row = (name: string, xs: number[]): string => `| ${name} | ${quantile(xs, 0.5).toFixed(2)} | ${quantile(xs, 0.99).toFixed(2)} | ${Math.max(...xs).toFixed(2)} |`;
console.log(`history: ${GPUS} GPUs, ${SLICES} slices, ${TENANTS} tenants = ${series} series; ${ROUNDS} rounds x ${PER_ROUND}, interleaved; node ${process.version}`);
console.log(`1 h at 1 s for one GPU: ${points} points, ${bodyBytes} bytes of JSON`);
console.log('| what (ms) | median | p99 | max |\n| --- | --- | --- | --- |');
console.log(row('store.range 1 h raw', runs.store));
console.log(row('GET /v1/history 1 h raw (loopback HTTP)', runs.api));
console.log(row('GET /v1/gpus (floor, same API)', runs.gpus));
console.log(row('CPU time: store.range 1 h raw', runs.storeCpu));
console.log(row('CPU time: GET /v1/history 1 h raw (server and client)', runs.apiCpu));
console.log(row('record one sample (193 series, one transaction)', recordMs));
const busy = recordMs.reduce((a, b) => a + b, 0) / recordMs.length / 1000;
console.log(`recording at 1 Hz: ${(busy * 100).toFixed(2)}% of a core (mean ${(busy * 1000).toFixed(2)} ms a sample)`);
console.log(`on disk after 1 h 5 min: ${(size.bytes / 2 ** 20).toFixed(1)} MiB (${size.raw} raw, ${size.minute} minute, ${size.hour} hour rows; ~${rawBytesPerRow.toFixed(0)} B a raw row)`);
console.log(`after 7 days at 1/min: ${(weekSize.bytes / 2 ** 20).toFixed(1)} MiB (${weekSize.minute} minute, ${weekSize.hour} hour rows; ~${aggBytesPerRow.toFixed(0)} B an aggregate row)`);
console.log(`bound at full windows (3,780 raw + 10,140 minute + 2,161 hour rows a series): ${(bound / 2 ** 20).toFixed(0)} MiB for ${series} series (${(bound / series / 2 ** 20).toFixed(2)} MiB a series)`);
