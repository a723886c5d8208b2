// The daemon API under a fixed 1,000 requests/s on loopback (issue 6 budget: p99 <= 5 ms),
// side by side with a bare fastify hello route under the same load.
//
// Open loop: request i is due at start + i ms whatever happened to the others, and its latency
// counts from when it was due, so a slow response delays nobody's clock (no coordinated
// omission). Keep-alive connections, as many as are needed. Each run is RATE req/s for
// SECONDS s after a 2 s warm-up at the same rate. Servers are separate processes, the load
// generator is this one; on a 2-core machine all three share the cores, so the baseline
// carries the same handicap.
//
// Runs: GET /v1/tasks (20 live tasks: one running, 19 queued), POST /v1/tasks (each submission
// queues behind an exclusive task, so nothing is launched: the cost is validation, admission,
// the SQLite transaction and the audit row), and the baseline's GET and POST.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RATE = Number(process.env['API_BENCH_RATE'] ?? 1000);
const SECONDS = Number(process.env['API_BENCH_SECONDS'] ?? 10);
const WARMUP = 2;
const root = fileURLToPath(new URL('../', import.meta.url));

interface Target {
  readonly port: number;
  readonly headers: Record<string, string>;
}

function waitLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const on = (b: Buffer): void => {
      text += b.toString();
      const m = pattern.exec(text);
      if (m) {
        child.stdout?.off('data', on);
        child.stderr?.off('data', on);
        resolve(m);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (code) => reject(new Error(`exited ${code} before it was ready:\n${text}`)));
  });
}

function call(agent: Agent, t: Target, method: string, path: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? t.headers : { ...t.headers, 'content-type': 'application/json' };
    const req = request({ host: '127.0.0.1', port: t.port, method, path, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Sends `rate` requests/s for `seconds` s. Every timer tick sends whatever has fallen due (no
 * busy-waiting: the responses need the same event loop). Latency is kept twice: from when the
 * request was due (what a client on that schedule sees, generator lag included) and from when
 * it was actually sent (the server's share).
 */
async function openLoop(t: Target, method: string, path: string, body: (() => string) | undefined, rate: number, seconds: number): Promise<{ fromDue: number[]; fromSend: number[]; statuses: Map<number, number>; lag: number[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(rate * seconds);
  const fromDue: number[] = [];
  const fromSend: number[] = [];
  const lag: number[] = [];
  const statuses = new Map<number, number>();
  const pending: Promise<void>[] = [];
  const start = performance.now() + 20;
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (i < total && start + (i * 1000) / rate <= now) {
        const due = start + (i * 1000) / rate;
        const sent = performance.now();
        lag.push(sent - due);
        pending.push(
          call(agent, t, method, path, body?.()).then(
            (status) => {
              const end = performance.now();
              fromDue.push(end - due);
              fromSend.push(end - sent);
              statuses.set(status, (statuses.get(status) ?? 0) + 1);
            },
            () => {
              statuses.set(0, (statuses.get(0) ?? 0) + 1);
            },
          ),
        );
        i += 1;
      }
      if (i >= total) resolve();
      else setTimeout(tick, Math.max(0, start + (i * 1000) / rate - performance.now()));
    };
    setTimeout(tick, 20);
  });
  await Promise.all(pending);
  agent.destroy();
  return { fromDue, fromSend, statuses, lag };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

interface Row {
  readonly name: string;
  readonly p50: number;
  readonly p99: number;
  readonly sendP50: number;
  readonly sendP99: number;
  readonly lagP99: number;
  readonly ok: string;
}

async function measure(name: string, t: Target, method: string, path: string, body?: () => string): Promise<Row> {
  await openLoop(t, method, path, body, RATE, WARMUP);
  const r = await openLoop(t, method, path, body, RATE, SECONDS);
  const ok = [...r.statuses].map(([s, n]) => `${n}x${s === 0 ? 'error' : s}`).join(' ');
  return { name, p50: pct(r.fromDue, 50), p99: pct(r.fromDue, 99), sendP50: pct(r.fromSend, 50), sendP99: pct(r.fromSend, 99), lagP99: pct(r.lag, 99), ok };
}

// API_BENCH_STATE=tmpfs puts the daemon's state (SQLite) on /dev/shm: with it, disk stalls are out of the picture.
const STATE_ON_TMPFS = process.env['API_BENCH_STATE'] === 'tmpfs';
const dir = mkdtempSync(join(STATE_ON_TMPFS ? '/dev/shm' : tmpdir(), 'gpushare-api-bench-'));
const children: ChildProcess[] = [];
// Killed (Ctrl-C, timeout): take the servers down too, not just this process.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const c of children) c.kill('SIGKILL');
    if (blockerPid !== null) {
      try {
        process.kill(-blockerPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    setTimeout(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    }, 200);
  });
}
let blocker: string | null = null;
let blockerPid: number | null = null;
let daemonTarget: Target | null = null;
try {
  // The daemon, as `gpushare serve` runs it, on TCP with a bearer token (the remote path).
  const token = randomBytes(16).toString('hex');
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ tokens: [{ sha256: createHash('sha256').update(token).digest('hex'), tenant: 'bench', role: 'admin' }] }));
  const daemon = spawn(process.execPath, [`${root}bin/gpushare.js`, 'serve', '--config', config, '--backend', 'simulated', '--simulate', '1xH100-80GB', '--state-dir', join(dir, 'state'), '--listen', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(daemon);
  const m = await waitLine(daemon, /listening on http:\/\/127\.0\.0\.1:(\d+)/);
  const gs: Target = { port: Number(m[1]), headers: { authorization: `Bearer ${token}` } };
  daemonTarget = gs;
  const hello = spawn(process.execPath, ['--import', 'tsx', `${root}bench/api/hello.ts`], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(hello);
  const hm = await waitLine(hello, /^(\d+)\n/);
  const base: Target = { port: Number(hm[1]), headers: {} };

  // One exclusive task holds the GPU; 19 more queue behind it.
  const agent = new Agent({ keepAlive: true });
  // `true`: should the blocker ever go while the daemon lives on (bench killed), what queued behind it ends at once.
  const submit = (extra: Record<string, unknown>): string => JSON.stringify({ command: ['true'], cwd: '/', memory: '1Gi', ...extra });
  blocker = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gs.port, method: 'POST', path: '/v1/tasks', headers: { ...gs.headers, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => {
        const t = JSON.parse(text) as { id: string; pid: number | null };
        blockerPid = t.pid;
        resolve(t.id);
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ command: ['sleep', '600'], cwd: '/', isolation: 'exclusive' }));
  });
  for (let i = 0; i < 19; i++) await call(agent, gs, 'POST', '/v1/tasks', submit({}));
  agent.destroy();
  // Everything measured below must queue: a launch per request would measure fork, not the API.
  const states = await new Promise<string[]>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gs.port, path: '/v1/tasks', headers: gs.headers }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve((JSON.parse(text) as { state: string }[]).map((t) => t.state)));
    });
    req.on('error', reject);
    req.end();
  });
  if (states.filter((s) => s === 'running').length !== 1 || states.length !== 20) throw new Error(`expected 1 running and 19 queued tasks, got ${states.join(',')}`);

  // GET first: the POST run leaves thousands of queued tasks behind.
  const rows = [
    await measure('bare fastify: GET /hello', base, 'GET', '/hello'),
    await measure('daemon: GET /v1/tasks (20 tasks)', gs, 'GET', '/v1/tasks'),
    await measure('bare fastify: POST /hello (same body)', base, 'POST', '/hello', () => submit({})),
    await measure('daemon: POST /v1/tasks (queued)', gs, 'POST', '/v1/tasks', () => submit({})),
  ];
  console.log(`API latency at ${RATE} requests/s for ${SECONDS} s (after ${WARMUP} s warm-up), open loop, loopback TCP, keep-alive; state on ${STATE_ON_TMPFS ? 'tmpfs' : 'disk'}; ms`);
  console.log('| endpoint | p50 from due | p99 from due | p50 from send | p99 from send | generator lag p99 | responses |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.name} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.sendP50.toFixed(2)} | ${r.sendP99.toFixed(2)} | ${r.lagP99.toFixed(2)} | ${r.ok} |`);
  const [bg, dg, bp, dp] = rows as [Row, Row, Row, Row];
  console.log(`\np99 from due, daemon / bare fastify: GET ${(dg.p99 / bg.p99).toFixed(2)}x, POST ${(dp.p99 / bp.p99).toFixed(2)}x`);
  console.log(`budget (daemon p99 <= 5 ms): GET ${dg.p99 <= 5 ? 'met' : 'NOT met'} (${dg.p99.toFixed(2)} ms), POST ${dp.p99 <= 5 ? 'met' : 'NOT met'} (${dp.p99.toFixed(2)} ms)`);
} finally {
  // Stop the one task that started (the others only queued) through the API, then the servers.
  if (blocker !== null && daemonTarget !== null) {
    const agent = new Agent();
    await call(agent, daemonTarget, 'POST', `/v1/tasks/${blocker}/kill`, JSON.stringify({ signal: 'SIGKILL' })).catch(() => undefined);
    agent.destroy();
  }
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  rmSync(dir, { recursive: true, force: true });
}
