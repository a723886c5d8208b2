// The live task list's cost at 1,020 tasks, in-process (no sockets: what the daemon itself spends,
// which the load on a shared machine blurs far less than latency). 1 exclusive task holds the
// simulated GPU and 1,019 queue behind it; then LIST_BENCH_WRITES times: one more submission
// (which changes the list), GET /v1/tasks through app.inject (the list rebuilt), and GET again
// (served from the cache). CPU time of this process per GET, medians.
//
// LIST_BENCH_BASELINE=/other/checkout (built): the same on that build's dist/, alternated with
// this one's (LIST_BENCH_ROUNDS rounds, default 3).
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type * as Server from '../src/api/server.js';
import type * as Open from '../src/gpu/open.js';
import type * as DaemonModule from '../src/node/daemon.js';
import type * as Launcher from '../src/node/launcher.js';
import type * as Db from '../src/node/store/db.js';
import type * as Tasks from '../src/node/store/tasks.js';
import { median } from './lib/native.js';

/** One build's modules, loaded from its dist/ (typed as this checkout's sources). */
interface Modules {
  gpu: typeof Open;
  daemon: typeof DaemonModule;
  launcher: typeof Launcher;
  db: typeof Db;
  tasks: typeof Tasks;
  api: typeof Server;
}

const WRITES = Number(process.env['LIST_BENCH_WRITES'] ?? 200);
const ROUNDS = Number(process.env['LIST_BENCH_ROUNDS'] ?? 3);
const here = fileURLToPath(new URL('../', import.meta.url));
const builds = [{ name: 'this build', root: here }];
const baseline = process.env['LIST_BENCH_BASELINE'];
if (baseline) builds.push({ name: `baseline (${baseline})`, root: baseline.endsWith('/') ? baseline : `${baseline}/` });

async function load(root: string): Promise<Modules> {
  return {
    gpu: (await import(`${root}dist/gpu/open.js`)) as Modules['gpu'],
    daemon: (await import(`${root}dist/node/daemon.js`)) as Modules['daemon'],
    launcher: (await import(`${root}dist/node/launcher.js`)) as Modules['launcher'],
    db: (await import(`${root}dist/node/store/db.js`)) as Modules['db'],
    tasks: (await import(`${root}dist/node/store/tasks.js`)) as Modules['tasks'],
    api: (await import(`${root}dist/api/server.js`)) as Modules['api'],
  };
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1000;
};

async function round(m: Modules): Promise<{ tasks: number; bytes: number; rebuilt: number; cached: number }> {
  const dir = mkdtempSync(join('/dev/shm', 'gpushare-list-bench-'));
  const { backend } = m.gpu.openBackend({ backend: 'simulated', simulate: '1xH100-80GB' });
  const db = m.db.openDatabase(join(dir, 'db'));
  const logger = pino({ level: 'silent' });
  const daemon = new m.daemon.Daemon({ stateDir: dir, backend, store: new m.tasks.TaskStore(db), logger, native: m.launcher.findNativePaths(), policy: 'binpack', killGraceMs: 1000 });
  daemon.start();
  const app = await m.api.buildApi({ daemon, logger, tokens: null, backend });
  const who = { actor: 'bench', role: 'admin' as const, tenant: null };
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 300));
  const blocker = daemon.submit({ command: ['sleep', '60'], cwd: '/', isolation: 'exclusive' }, who);
  await pause();
  const queued = (): void => void daemon.submit({ command: ['true'], cwd: '/', memory: '1Gi' }, who);
  for (let i = 0; i < 1019; i++) queued();
  await pause();
  const get = (): Promise<string> => app.inject({ method: 'GET', url: '/v1/tasks' }).then((r) => r.body);
  const body = await get();
  const rebuilt: number[] = [];
  const cached: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    queued();
    let t = process.cpuUsage();
    await get();
    rebuilt.push(cpuMs(t));
    t = process.cpuUsage();
    await get();
    cached.push(cpuMs(t));
  }
  const pid = daemon.get(blocker.id).pid;
  if (pid !== null) process.kill(-pid, 'SIGKILL');
  await app.close();
  daemon.close();
  db.close();
  backend.close();
  rmSync(dir, { recursive: true, force: true });
  return { tasks: (JSON.parse(body) as unknown[]).length, bytes: body.length, rebuilt: median(rebuilt), cached: median(cached) };
}

const modules = await Promise.all(builds.map((b) => load(b.root)));
const results = builds.map(() => [] as Awaited<ReturnType<typeof round>>[]);
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < builds.length; k++) {
    const i = r % 2 === 0 ? k : builds.length - 1 - k;
    const m = modules[i];
    if (m) results[i]?.push(await round(m));
  }
}
console.log(`GET /v1/tasks in-process (app.inject), CPU ms per request, median over ${ROUNDS} rounds of ${WRITES} writes`);
console.log('| build | live tasks | bytes | after a write (rebuilt) | unchanged (cached) |');
console.log('| --- | --- | --- | --- | --- |');
for (const [i, b] of builds.entries()) {
  const rs = results[i] ?? [];
  console.log(`| ${b.name} | ${rs[0]?.tasks} | ${rs[0]?.bytes} | ${median(rs.map((x) => x.rebuilt)).toFixed(2)} | ${median(rs.map((x) => x.cached)).toFixed(2)} |`);
}
process.exit(0);
