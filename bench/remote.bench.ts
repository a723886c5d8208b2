// Remote GPU sessions on loopback (issue 23's budgets), fake driver (NOT a GPU): the C client
// (libcuda.so.1 under native/remote/tests/remote_app's `bench` mode; with GPUSHARE_REMOTE_LANES=0,
// one connection, and with REMOTE_BENCH_LANES bulk lanes, default 8) and the TypeScript SDK (one connection)
// (src/remote/sdk) against the same worker build, side by side with plain Node TCP to a Node peer
// in its own process (bench/remote-peer.mjs: the floor any Node client stands on). Rounds are
// interleaved (the first variant rotates) so drift hits all alike; each cell is the median over
// rounds with a 95% bootstrap interval.
//
//   round trip (us): median of 20,000 sequential small calls (cuCtxGetDevice; the peer: a 24-byte
//                    echo)                                                    budget <= 50 us
//   launches/s:      100,000 launches that return nothing, then one synchronize  >= 100,000
//   H2D / D2H GB/s:  one 256 MiB copy each way (REMOTE_BENCH_COPY_MIB)          (>= 50% of native)
//
// The worker's fake driver runs a 0 us kernel inline ("inlineLaunch"): the fake's stream thread
// handoff (~90 us a launch on this machine) would otherwise be all that is measured.
// REMOTE_BENCH_ROUNDS (default 7) sets the rounds.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { RemoteSession } from '../src/remote/sdk/index.js';
import { formatInterval, percentile } from './lib/interval.js';
import { nativeRoot } from './lib/native.js';

const ROUNDS = Number(process.env['REMOTE_BENCH_ROUNDS'] ?? 7);
const CALLS = 20_000;
const LAUNCHES = 100_000;
const COPY_BYTES = Number(process.env['REMOTE_BENCH_COPY_MIB'] ?? 256) * 2 ** 20;
const LANES = process.env['REMOTE_BENCH_LANES'] ?? '8';
const repo = fileURLToPath(new URL('../', import.meta.url));
const worker = `${nativeRoot}gpushare-remote-worker`;
const clientDir = `${nativeRoot}remote`;
const app = `${nativeRoot}remote/bench/remote_app`;
const FAKE = JSON.stringify({ inlineLaunch: true });

type Metrics = { rtUs: number; launchesPerS: number; h2dGBs: number; d2hGBs: number };

/** remote_app without sanitizers (the tests' build has them): compiled here when missing or older than its source. */
function buildApp(): void {
  const src = `${repo}native/remote/tests/remote_app.c`;
  if (existsSync(app) && statSync(app).mtimeMs >= statSync(src).mtimeMs) return;
  mkdirSync(`${nativeRoot}remote/bench`, { recursive: true });
  const cc = spawnSync(process.env['CC'] ?? 'cc', ['-std=c11', '-D_POSIX_C_SOURCE=200809L', '-O2', `-I${repo}native/include`, `-I${repo}native/remote`, '-o', app, src, `-L${nativeRoot}fake`, '-l:libcuda.so.1'], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cannot build ${app}: ${cc.stderr}`);
}

/** A line matching `re` on the child's stdout: its first group. */
function lineOf(child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (d: Buffer) => {
      text += String(d);
      const m = re.exec(text);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`exited ${String(code)} before printing ${String(re)}: ${text}`)));
  });
}

async function startWorker(key: string): Promise<{ port: number; done: Promise<void> }> {
  const child = spawn(worker, ['--listen', '127.0.0.1:0', '--accept-timeout-ms', '30000'], {
    env: { ...process.env, GPUSHARE_REMOTE_KEY: key, GPUSHARE_FAKE_CUDA: FAKE, LD_LIBRARY_PATH: `${nativeRoot}fake` },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  return { port: Number(await lineOf(child, /listening (\d+)/)), done };
}

/** The C client with `lanes` bulk lanes (docs/remote.md "Bulk lanes"; '0': one connection). */
async function cClient(lanes: string): Promise<Metrics> {
  const key = randomBytes(32).toString('hex');
  const w = await startWorker(key);
  const r = spawnSync(app, ['bench'], {
    encoding: 'utf8',
    env: { ...process.env, GPUSHARE_REMOTE: `127.0.0.1:${w.port}`, GPUSHARE_REMOTE_KEY: key, GPUSHARE_REMOTE_LANES: lanes, LD_LIBRARY_PATH: clientDir },
  });
  await w.done;
  const num = (re: RegExp): number => Number(re.exec(r.stdout)?.[1] ?? NaN);
  if (r.status !== 0) throw new Error(`remote_app bench: ${r.stdout} ${r.stderr}`);
  return { rtUs: num(/round_trip_us median ([\d.]+)/), launchesPerS: num(/launches_per_s (\d+)/), h2dGBs: num(/htod_gb_s ([\d.]+)/), d2hGBs: num(/dtoh_gb_s ([\d.]+)/) };
}

async function sdk(): Promise<Metrics> {
  const key = randomBytes(32).toString('hex');
  const w = await startWorker(key);
  const s = await RemoteSession.connect({ endpoint: `127.0.0.1:${w.port}`, key });
  for (let i = 0; i < 100; i++) await s.contextDevice();
  const t = new Float64Array(CALLS);
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await s.contextDevice();
    t[i] = (performance.now() - t0) * 1e3;
  }
  const mod = await s.loadModule('// bench\n');
  const k = await s.function(mod, 'sleep_0');
  let t0 = performance.now();
  for (let i = 0; i < LAUNCHES; i++) s.launch(k, 1, 1);
  await s.synchronize();
  const launchesPerS = LAUNCHES / ((performance.now() - t0) / 1e3);
  const host = Buffer.alloc(COPY_BYTES, 1);
  const p = await s.malloc(COPY_BYTES);
  t0 = performance.now();
  await s.copyIn(p, host);
  const h2d = performance.now() - t0;
  t0 = performance.now();
  await s.copyOut(p, COPY_BYTES, { into: host });
  const d2h = performance.now() - t0;
  await s.close();
  await w.done;
  return { rtUs: percentile([...t], 50), launchesPerS, h2dGBs: COPY_BYTES / h2d / 1e6, d2hGBs: COPY_BYTES / d2h / 1e6 };
}

function open(port: number, first: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect({ port, host: '127.0.0.1', noDelay: true }, () => {
      c.write(first);
      resolve(c);
    });
    c.once('error', reject);
  });
}

function mode(letter: string, n: number): Buffer {
  const b = Buffer.alloc(9);
  b.write(letter, 0);
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

/** Plain Node TCP to the peer: a 24-byte echo's round trip, COPY_BYTES each way. */
async function plainTcp(peerPort: number): Promise<Metrics> {
  const c = await open(peerPort, Buffer.from('e'));
  let wake: (() => void) | undefined;
  c.on('data', () => wake?.());
  const msg = Buffer.alloc(24);
  const once = (): Promise<void> =>
    new Promise((r) => {
      wake = r;
      c.write(msg);
    });
  for (let i = 0; i < 100; i++) await once();
  const t = new Float64Array(CALLS);
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await once();
    t[i] = (performance.now() - t0) * 1e3;
  }
  c.destroy();
  const data = Buffer.alloc(COPY_BYTES, 1);
  let t0 = performance.now();
  const sink = await open(peerPort, mode('s', COPY_BYTES));
  await new Promise<void>((r) => {
    sink.once('data', () => r());
    for (let off = 0; off < COPY_BYTES; off += 2 ** 20) sink.write(data.subarray(off, off + 2 ** 20));
  });
  const h2d = performance.now() - t0;
  sink.destroy();
  t0 = performance.now();
  const source = await open(peerPort, mode('o', COPY_BYTES));
  await new Promise<void>((r) => {
    let got = 0;
    source.on('data', (d: Buffer) => {
      data.set(d, got);
      got += d.length;
      if (got >= COPY_BYTES) r();
    });
  });
  const d2h = performance.now() - t0;
  source.destroy();
  return { rtUs: percentile([...t], 50), launchesPerS: NaN, h2dGBs: COPY_BYTES / h2d / 1e6, d2hGBs: COPY_BYTES / d2h / 1e6 };
}

buildApp();
if (!existsSync(worker)) {
  console.error(`${worker} is missing: build it with \`npm run build\``);
  process.exit(2);
}
const peer = spawn(process.execPath, [fileURLToPath(new URL('./remote-peer.mjs', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
const peerPort = Number(await lineOf(peer, /listening (\d+)/));
const before = loadavg();
const variants = [() => plainTcp(peerPort), () => cClient('0'), () => cClient(LANES), sdk];
const results: Metrics[][] = variants.map(() => []);
// bench/lib/native.ts's interleaved() order (the first variant rotates), for async rounds.
for (let i = 0; i < ROUNDS; i++) {
  for (let j = 0; j < variants.length; j++) {
    const k = (i + j) % variants.length;
    results[k]?.push(await (variants[k] as () => Promise<Metrics>)());
  }
}
peer.kill();
const after = loadavg();
const cell = (k: number, key: keyof Metrics, digits: number): string => {
  const xs = (results[k] ?? []).map((m) => m[key]);
  return xs.every(Number.isNaN) ? '-' : formatInterval(xs, digits);
};
console.log(`remote sessions on loopback, fake driver (not a GPU); ${ROUNDS} interleaved rounds, median (95% bootstrap interval); load average ${before[0]?.toFixed(2)} before, ${after[0]?.toFixed(2)} after`);
console.log(`| measure | plain Node TCP (peer process) | C client, 1 connection | C client, ${LANES} bulk lanes | TypeScript SDK | budget |`);
console.log('| --- | --- | --- | --- | --- | --- |');
const row = (label: string, key: keyof Metrics, digits: number, budget: string): void =>
  console.log(`| ${label} | ${[0, 1, 2, 3].map((k) => cell(k, key, digits)).join(' | ')} | ${budget} |`);
row(`small call round trip, us (median of ${CALLS})`, 'rtUs', 1, '<= 50');
row('launches returning nothing, per s', 'launchesPerS', 0, '>= 100,000');
row(`host to device, GB/s (${COPY_BYTES / 2 ** 20} MiB; fake driver, not GPU numbers)`, 'h2dGBs', 2, '>= 50% of native');
row(`device to host, GB/s (${COPY_BYTES / 2 ** 20} MiB; fake driver, not GPU numbers)`, 'd2hGBs', 2, '>= 50% of native');
