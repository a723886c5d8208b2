// Immediate-start submissions per second (issue 17 budget: >= 500/s with the submission's p99
// <= 50 ms) and the live task list at 1,000+ tasks, side by side with a baseline build.
//
// Each round starts a fresh `gpushare serve` of each build in turn (order reversed every other
// round, so drift and other work on the machine hit both alike) on the simulated backend with
// 8 GPUs, state on disk, Unix socket, and runs on it:
//   1. fixed rate: START_BENCH_RATE submissions/s (default 500) for START_BENCH_COUNT (1,000),
//      open loop (submission i is due at start + i/rate whatever happened to the others; latency
//      counts from when it was due, so a slow daemon cannot hide behind a slow generator);
//   2. max rate: START_BENCH_CLIENTS (8) keep-alive clients, each sending its next submission as
//      soon as the last one was answered, START_BENCH_COUNT in all;
//   3. the live list: 8 exclusive `sleep` tasks hold the GPUs and 1,012 more queue behind them;
//      GET /v1/tasks is polled at 200/s for 5 s (open loop) while 10 submissions/s keep changing
//      the list (a list nobody writes to is served from cache, which says nothing).
// Every submission is `true` on a 1 GiB slice, which fits at once: nothing waits for room. Time
// to `running` is the task's `task.started` event (daemon clock, ms) minus when it was due.
// Accepted/s counts 201 answers over the time from the first due to the last answer.
//
// START_BENCH_BASELINE=/other/checkout (built): its bin/gpushare.js runs alongside this one.
// START_BENCH_PROFILE=dir: every daemon runs under `node --cpu-prof` and leaves its profile there.
// START_BENCH_STALLS=dir: where the time of the fixed-rate run went, printed per round (a slow
// first round, issue 17's leftover): the daemon's and this client's longest event-loop stall and
// their garbage collection in that run (bench/lib/stall-log.mjs, logs kept in dir), and the
// machine's CPU and IO pressure over it (/proc/pressure: the share of the run in which some
// runnable task waited for a CPU, or for IO).
// With START_BENCH_STALLS, also the daemon's and the client's CPU time and page faults in that run
// (a major fault is a file read from disk): whether a slow round did more work or waited.
// And what a slow round has: its slowest 1% of fixed-rate answers, each split into when the
// client sent it, when the daemon's handler took it (submittedAt), when its commit stored it
// (task.submitted) and when the answer came (ms after due), beside every daemon callback that
// held its event loop 10 ms or more (stall-log.mjs's `.slow` file) and its stalled 100-ms windows.
// As root with a cgroup v1 cpuacct hierarchy (/sys/fs/cgroup/cpuacct), each daemon runs in a
// cpuacct group of its own, which keeps everything it starts (the spawner, each task's wrapper,
// the task, its end's cleanup) whatever cgroup v2 group the sandbox moves them to: "all CPU ms
// per task" is that group's CPU from the first send to the last task's end, over the accepted
// tasks: the whole cost of a start on this machine, whatever else runs beside it (null without).
// START_BENCH_LIST=0: no live-list phase (a profile or a CPU count of the starts alone).
// START_BENCH_OPEN_WARMUP=1: the open loop is warmed up as well (see round()).
// START_BENCH_SERVE_ARGS='--sandbox off': more serve flags for this build only;
// START_BENCH_BASELINE_SERVE_ARGS: the same for the baseline (one that knows them).
// START_BENCH_NODE_ARGS='--max-semi-space-size=32': more `node` flags for this build's daemon;
// START_BENCH_BASELINE_NODE_ARGS: the same for the baseline's (a GC setting, tried side by side).
// Per-round numbers are printed as they come; the table gives medians over rounds with a 95%
// bootstrap interval of the median.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const ROUNDS = Number(process.env['START_BENCH_ROUNDS'] ?? 5);
const RATE = Number(process.env['START_BENCH_RATE'] ?? 500);
const COUNT = Number(process.env['START_BENCH_COUNT'] ?? 1000);
const CLIENTS = Number(process.env['START_BENCH_CLIENTS'] ?? 8);
const OPEN_WARMUP = process.env['START_BENCH_OPEN_WARMUP'] === '1';
const LIST = process.env['START_BENCH_LIST'] !== '0';
const LIST_TASKS = 1020;
const LIST_RATE = 200;
const LIST_SECONDS = 5;
const LIST_WRITES_PER_S = 10;
const GPUS = 8;
const root = fileURLToPath(new URL('../', import.meta.url));
const builds: { name: string; bin: string }[] = [{ name: 'this build', bin: `${root}bin/gpushare.js` }];
const baseline = process.env['START_BENCH_BASELINE'];
if (baseline) builds.push({ name: `baseline (${baseline})`, bin: join(baseline, 'bin', 'gpushare.js') });

interface Client {
  readonly socket: string;
  readonly agent: Agent;
}

interface Answer {
  readonly status: number;
  readonly body: string;
  /** Body bytes, when only counted. */
  readonly bytes?: number;
}

/** One request; `bytesOnly`: the body is counted, not decoded (the list polls: the client's own cost stays small). */
function call(c: Client, method: string, path: string, payload?: unknown, bytesOnly = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    const req = request({ socketPath: c.socket, method, path, headers, agent: c.agent }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (b: Buffer) => (bytesOnly ? (bytes += b.length) : chunks.push(b)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: bytesOnly ? '' : Buffer.concat(chunks).toString(), bytes }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU time (user + system, ms) a process has used so far, from /proc (clock ticks of 10 ms). */
/** A process's page faults so far (/proc/PID/stat): major ones read a file's pages from disk. */
function faults(pid: number): { minor: number; major: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { minor: Number(fields[7]), major: Number(fields[9]) };
}

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const nowMs = (): number => performance.timeOrigin + performance.now();
const pct = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

const TRIVIAL = { command: ['true'], cwd: '/', memory: '1Gi' };

interface Sent {
  readonly due: number;
  /** When this client sent it (the open loop's lateness: due to sent is the client's own delay). */
  readonly sent: number;
  end: number;
  status: number;
  id: string | null;
  /** When the daemon's handler took it (its `submittedAt`, daemon clock, epoch ms; open loop only). */
  taken?: number;
}

/** Open loop: `count` requests at `rate`/s; each one's timing from when it was due. */
async function openLoop(count: number, rate: number, send: (i: number) => Promise<Answer>): Promise<Sent[]> {
  const sent: Sent[] = [];
  const pending: Promise<void>[] = [];
  const start = nowMs() + 10;
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = nowMs();
      while (i < count && start + (i * 1000) / rate <= now) {
        const s: Sent = { due: start + (i * 1000) / rate, sent: now, end: NaN, status: 0, id: null };
        sent.push(s);
        pending.push(
          send(i).then(
            (a) => {
              s.end = nowMs();
              s.status = a.status;
              if (a.status === 201) {
                const task = JSON.parse(a.body) as { id: string; submittedAt?: number };
                s.id = task.id;
                s.taken = task.submittedAt ?? NaN;
              }
            },
            () => {
              s.end = nowMs();
            },
          ),
        );
        i += 1;
      }
      if (i >= count) resolve();
      else setTimeout(tick, Math.max(0, start + (i * 1000) / rate - nowMs()));
    };
    setTimeout(tick, 10);
  });
  await Promise.all(pending);
  return sent;
}

/** Closed loop: `clients` callers, each sending its next request when the last is answered. */
async function closedLoop(count: number, clients: number, send: () => Promise<Answer>): Promise<Sent[]> {
  const sent: Sent[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next += 1;
      const due = nowMs();
      const s: Sent = { due, sent: due, end: NaN, status: 0, id: null };
      sent.push(s);
      try {
        const a = await send();
        s.status = a.status;
        if (a.status === 201) s.id = (JSON.parse(a.body) as { id: string }).id;
      } catch {
        // counted as not accepted
      }
      s.end = nowMs();
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  return sent;
}

/**
 * A full collection of this client's heap before each measured run, so that the client's own
 * collection of what tsx and the warm-up left does not fall inside a run, delaying its sends and
 * reads and counting as the daemon's latency. On the loaded development machine a first round's
 * fixed-rate run held 421 ms of the client's GC against 115 ms in the second (START_BENCH_STALLS),
 * but longer, backlogged runs held more: whether this was the quiet machine's slow first round is
 * for a quiet run with START_BENCH_STALLS to show.
 */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const STALLS = process.env['START_BENCH_STALLS'];
const STALL_LOG = join(root, 'bench', 'lib', 'stall-log.mjs');
if (STALLS) {
  mkdirSync(STALLS, { recursive: true }); // the daemons' stall logs go there too: a missing folder ended them
  process.env['START_BENCH_STALL_FILE'] = join(STALLS, `client-${process.pid}.log`);
  await import(STALL_LOG);
}

/** The longest stall and the GC time (ms) a stall log shows between two wall times (epoch ms). */
function stallsIn(file: string, from: number, to: number): { longest: number; gc: number; major: number; longestGc: number } {
  let longest = 0;
  let gc = 0;
  let major = 0;
  let longestGc = 0;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  for (const line of text.split('\n')) {
    const [at, stall, gcMs, majorMs, pause] = line.split(' ').map(Number);
    if (at === undefined || stall === undefined || gcMs === undefined || !(at >= from && at <= to + 100)) continue;
    longest = Math.max(longest, stall);
    gc += gcMs;
    major += majorMs ?? 0;
    longestGc = Math.max(longestGc, pause ?? 0);
  }
  return { longest, gc, major, longestGc };
}

/** /proc/pressure/<what>'s "some" total (us): how long some runnable task waited for it; null without PSI. */
function pressureUs(what: 'cpu' | 'io'): number | null {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync(`/proc/pressure/${what}`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

interface StartResult {
  readonly acceptedPerS: number;
  readonly p50: number;
  readonly p99: number;
  readonly runP50: number;
  readonly runP99: number;
  readonly refused: number;
  /** The daemon's CPU time per accepted submission, ms (its share of the machine, whatever else runs). */
  readonly cpuPerTask: number;
  /** The CPU (ms) of the daemon and everything it started, per accepted task, to the last task's end; null without a cpuacct group. */
  readonly allCpuPerTask: number | null;
  /** The 99th percentile of how late this client sent (ms after due): its part of the POST p99. */
  readonly sendLateP99: number;
  /** CPU ms from the first send to the last answer: the daemon's, and this client's own. */
  readonly cpuInRun: { readonly daemon: number; readonly client: number };
  /** Page faults in the run: the daemon's major (a file read from disk) and minor ones, the client's major ones. */
  readonly faults: { readonly daemon: number; readonly daemonMinor: number; readonly client: number };
  /** The slowest 1% of answers: when each was due (epoch ms), its latency, how late the client sent it, when the daemon's handler took it and when its commit recorded it (ms after due), in due order. */
  readonly slowest: readonly { readonly due: number; readonly ms: number; readonly sentLate: number; readonly taken: number; readonly stored: number }[];
  /** From the first due to the last answer (epoch ms): the window START_BENCH_STALLS reports on. */
  readonly window: readonly [number, number];
  /** The machine's CPU and IO pressure over the run, percent of its time; null without PSI. */
  readonly pressure: { readonly cpu: number | null; readonly io: number | null };
}

/**
 * When each task's `task.started` event was recorded (daemon clock, ms), and its
 * `task.submitted` (the time the daemon's handler took the submission: how much of an answer's
 * latency came before the daemon had read it).
 */
async function startedAt(c: Client, submitted?: Map<string, number>): Promise<Map<string, number>> {
  const at = new Map<string, number>();
  let since = 0;
  for (;;) {
    const page = JSON.parse((await call(c, 'GET', `/v1/events?since=${since}&limit=10000`)).body) as { seq: number; at: number; type: string; taskId: string | null }[];
    if (page.length === 0) return at;
    for (const e of page) {
      if (e.type === 'task.started' && e.taskId !== null) at.set(e.taskId, e.at);
      else if (e.type === 'task.submitted' && e.taskId !== null) submitted?.set(e.taskId, e.at);
    }
    since = page[page.length - 1]?.seq ?? since;
  }
}

/**
 * Waits until nothing is live but `keep` tasks (the `true` tasks have all ended): up to 300 s (120 s failed a round at load 19 in session 24),
 * since on a loaded machine starts at a low CPU weight (task-cpu.ts) trail the submissions by
 * tens of seconds. Each poll asks for `keep` + 1 tasks, not the first page (500 tasks, half a
 * megabyte): the daemon's CPU counted over a run goes on to the drain's end, and a poll of a
 * full page every 100 ms counted milliseconds a second against the builds whose starts trail.
 */
async function drain(c: Client, keep = 0): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    const live = JSON.parse((await call(c, 'GET', `/v1/tasks?limit=${keep + 1}`)).body) as unknown[];
    if (live.length <= keep) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('tasks still live after 300 s');
}

/**
 * A cpuacct (cgroup v1) group for one daemon and all it starts (see the top of this file); null
 * when there is none to make (not root, or no v1 cpuacct hierarchy).
 */
function cpuacctGroup(pid: number): string | null {
  const base = '/sys/fs/cgroup/cpuacct';
  if (process.getuid?.() !== 0 || !existsSync(join(base, 'cpuacct.usage'))) return null;
  const dir = join(base, `gpushare-start-bench-${process.pid}-${pid}`);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    return dir;
  } catch {
    return null;
  }
}

/** A cpuacct group's CPU so far (ms). */
function groupCpuMs(group: string | null): number | null {
  return group === null ? null : Number(readFileSync(join(group, 'cpuacct.usage'), 'utf8')) / 1e6;
}

async function startRun(c: Client, pid: number, run: () => Promise<Sent[]>, group: string | null): Promise<StartResult> {
  collectGarbage();
  const all0 = groupCpuMs(group);
  const cpu0 = cpuMs(pid);
  const client0 = process.cpuUsage();
  const faults0 = faults(pid);
  const clientFaults0 = process.resourceUsage().majorPageFault;
  const [cpuP0, ioP0] = [pressureUs('cpu'), pressureUs('io')];
  const sent = await run();
  const [cpuP1, ioP1] = [pressureUs('cpu'), pressureUs('io')];
  const client = process.cpuUsage(client0);
  const runCpu = cpuMs(pid) - cpu0;
  const faults1 = faults(pid);
  const majorFaults = { daemon: faults1.major - faults0.major, daemonMinor: faults1.minor - faults0.minor, client: process.resourceUsage().majorPageFault - clientFaults0 };
  await drain(c);
  const cpu = cpuMs(pid) - cpu0;
  const all1 = groupCpuMs(group);
  const submittedAt = new Map<string, number>();
  const started = await startedAt(c, submittedAt);
  const ok = sent.filter((s) => s.status === 201);
  const first = Math.min(...sent.map((s) => s.due));
  const last = Math.max(...ok.map((s) => s.end));
  const toRunning = ok.flatMap((s) => {
    const at = s.id === null ? undefined : started.get(s.id);
    return at === undefined ? [] : [at - s.due];
  });
  if (toRunning.length !== ok.length) throw new Error(`${ok.length - toRunning.length} accepted tasks never started`);
  const lat = ok.map((s) => s.end - s.due);
  const share = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : (100 * (b - a)) / 1000 / (last - first));
  return { acceptedPerS: (ok.length * 1000) / (last - first), p50: pct(lat, 50), p99: pct(lat, 99), runP50: pct(toRunning, 50), runP99: pct(toRunning, 99), refused: sent.length - ok.length, cpuPerTask: cpu / ok.length, allCpuPerTask: all0 === null || all1 === null ? null : (all1 - all0) / ok.length, sendLateP99: pct(ok.map((s) => s.sent - s.due), 99), slowest: [...ok].sort((a, b) => b.end - b.due - (a.end - a.due)).slice(0, Math.ceil(ok.length / 100)).sort((a, b) => a.due - b.due).map((s) => ({ due: s.due, ms: s.end - s.due, sentLate: s.sent - s.due, taken: (s.taken ?? NaN) - s.due, stored: (s.id === null ? NaN : submittedAt.get(s.id) ?? NaN) - s.due })), cpuInRun: { daemon: runCpu, client: (client.user + client.system) / 1000 }, faults: majorFaults, window: [first, last], pressure: { cpu: share(cpuP0, cpuP1), io: share(ioP0, ioP1) } };
}

interface ListResult {
  readonly tasks: number;
  readonly kb: number;
  readonly p50: number;
  readonly p99: number;
  /** The daemon's CPU time per poll, ms (the writes' share included). */
  readonly cpuPerPoll: number;
}

async function listRun(c: Client, pid: number): Promise<ListResult> {
  for (let g = 0; g < GPUS; g++) {
    const a = await call(c, 'POST', '/v1/tasks', { command: ['sleep', '120'], cwd: '/', isolation: 'exclusive' });
    if (a.status !== 201) throw new Error(`blocker: ${a.status} ${a.body}`);
  }
  await closedLoop(LIST_TASKS - GPUS, 4, () => call(c, 'POST', '/v1/tasks', TRIVIAL));
  // The blockers may still be starting on a loaded machine: waited for (up to 30 s).
  let listed: { state: string }[] = [];
  for (let i = 0; i < 300; i++) {
    listed = JSON.parse((await call(c, 'GET', '/v1/tasks')).body) as { state: string }[];
    if (listed.filter((t) => t.state === 'running').length === GPUS) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // A build with pages (issue 17) lists the first 500; one without, all of them.
  if (listed.filter((t) => t.state === 'running').length !== GPUS || listed.length < 500) throw new Error(`expected ${GPUS} running and ${LIST_TASKS - GPUS} queued, got ${listed.length} listed`);
  collectGarbage();
  const writer = new Client0(c.socket);
  const writes = openLoop(LIST_SECONDS * LIST_WRITES_PER_S, LIST_WRITES_PER_S, () => call(writer, 'POST', '/v1/tasks', TRIVIAL));
  let bytes = 0;
  const cpu0 = cpuMs(pid);
  const polls = await openLoop(LIST_RATE * LIST_SECONDS, LIST_RATE, async () => {
    const a = await call(c, 'GET', '/v1/tasks', undefined, true);
    bytes = Math.max(bytes, a.bytes ?? 0);
    return a;
  });
  await writes;
  const cpu = cpuMs(pid) - cpu0;
  writer.agent.destroy();
  const lat = polls.filter((s) => s.status === 200).map((s) => s.end - s.due);
  if (lat.length !== polls.length) throw new Error(`${polls.length - lat.length} polls failed`);
  const tasks = (JSON.parse((await call(c, 'GET', '/v1/tasks')).body) as unknown[]).length;
  return { tasks, kb: bytes / 1000, p50: pct(lat, 50), p99: pct(lat, 99), cpuPerPoll: cpu / polls.length };
}

class Client0 implements Client {
  readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  constructor(readonly socket: string) {}
}

interface RoundResult {
  readonly fixed: StartResult;
  readonly max: StartResult;
  readonly list: ListResult;
}

const daemons = new Set<ChildProcess>();
/** The rounds' state directories: an interrupted run removes them too (as root, a daemon's uid-range claim names its state directory, and one left behind blocks the next run's daemons). */
const stateDirs = new Set<string>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const d of daemons) d.kill('SIGKILL');
    for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    process.exit(130);
  });
}

async function round(bin: string): Promise<RoundResult> {
  const dir = mkdtempSync(join(tmpdir(), 'gpushare-start-bench-'));
  stateDirs.add(dir);
  const socket = join(dir, 'api.sock');
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GPUSHARE_')) delete env[k];
  const profile = process.env['START_BENCH_PROFILE'];
  // START_BENCH_SERVE_ARGS: more `serve` flags for this build (`--sandbox off`, say); the
  // baseline's are START_BENCH_BASELINE_SERVE_ARGS (an older build may not know them).
  const mine = bin === builds[0]?.bin;
  const extra = (process.env[mine ? 'START_BENCH_SERVE_ARGS' : 'START_BENCH_BASELINE_SERVE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const nodeArgs = (process.env[mine ? 'START_BENCH_NODE_ARGS' : 'START_BENCH_BASELINE_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  // Its own session, as a service's (systemd's, or setsid's): what its CPU priority applies to (src/node/priority.ts).
  const stallFile = STALLS ? join(STALLS, `daemon-${Date.now()}.log`) : null;
  if (stallFile !== null) env['START_BENCH_STALL_FILE'] = stallFile;
  const args = [...nodeArgs, ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), ...(stallFile !== null ? ['--import', STALL_LOG] : []), bin, 'serve', '--backend', 'simulated', '--simulate', `${GPUS}xH100-80GB`, '--state-dir', join(dir, 'state'), '--listen', socket, '--log-level', 'warn', ...extra];
  const daemon = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  daemons.add(daemon);
  // Before its first task (the spawner starts with the first one): everything it starts is counted.
  const group = cpuacctGroup(daemon.pid ?? 0);
  const c = new Client0(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      let text = '';
      daemon.stderr?.on('data', (b: Buffer) => {
        text += b.toString();
        if (text.includes('listening on')) resolve();
      });
      daemon.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${text}`)));
    });
    await closedLoop(200, CLIENTS, () => call(c, 'POST', '/v1/tasks', TRIVIAL)); // warm-up
    // START_BENCH_OPEN_WARMUP=1: the open loop warmed up too, whose first use is otherwise the
    // first round's measured run (to test whether the slow first round is this client's own
    // code compiling; the client's CPU in that run, START_BENCH_STALLS, was no higher than later).
    if (OPEN_WARMUP) await openLoop(200, RATE, () => call(c, 'POST', '/v1/tasks', TRIVIAL));
    await drain(c);
    const pid = daemon.pid ?? 0;
    const fixed = await startRun(c, pid, () => openLoop(COUNT, RATE, () => call(c, 'POST', '/v1/tasks', TRIVIAL)), group);
    const max = await startRun(c, pid, () => closedLoop(COUNT, CLIENTS, () => call(c, 'POST', '/v1/tasks', TRIVIAL)), group);
    const list = LIST ? await listRun(c, pid) : { tasks: NaN, kb: NaN, p50: NaN, p99: NaN, cpuPerPoll: NaN };
    if (stallFile !== null) {
      const [from, to] = fixed.window;
      const d = stallsIn(stallFile, from, to);
      const cl = stallsIn(process.env['START_BENCH_STALL_FILE'] ?? '', from, to);
      const p = (x: number | null): string => (x === null ? '?' : `${x.toFixed(0)}%`);
      console.log(`  fixed-rate run (${((to - from) / 1000).toFixed(1)} s): sent late p99 ${fixed.sendLateP99.toFixed(1)} ms (the client's own delay); daemon longest stall ${d.longest.toFixed(0)} ms, GC ${d.gc.toFixed(0)} ms (full ${d.major.toFixed(0)} ms, longest pause ${d.longestGc.toFixed(0)} ms); client longest stall ${cl.longest.toFixed(0)} ms, GC ${cl.gc.toFixed(0)} ms; CPU in the run: daemon ${fixed.cpuInRun.daemon.toFixed(0)} ms, client ${fixed.cpuInRun.client.toFixed(0)} ms; page faults: daemon ${fixed.faults.daemon} major, ${fixed.faults.daemonMinor} minor, client ${fixed.faults.client} major; machine CPU pressure ${p(fixed.pressure.cpu)}, IO ${p(fixed.pressure.io)}`);
    }
    if (stallFile !== null) {
      // What the daemon ran for 10 ms or more around the fixed-rate run (stall-log.mjs's `.slow`
      // file), beside when the slowest answers were due: what a slow round has that others lack.
      const [from, to] = fixed.window;
      const at = (t: number): string => `${t - from >= 0 ? '+' : ''}${(t - from).toFixed(0)}`;
      console.log(`  slowest 1% of the fixed-rate answers (ms after the first due: sent / taken by the daemon's handler / stored / answered, ms after due): ${fixed.slowest.map((s) => `${at(s.due)}: ${s.sentLate.toFixed(0)}/${s.taken.toFixed(0)}/${s.stored.toFixed(0)}/${s.ms.toFixed(0)}`).join(', ')}`);
      const slow = existsSync(`${stallFile}.slow`) ? readFileSync(`${stallFile}.slow`, 'utf8').split('\n').filter((l) => l !== '') : [];
      const inRun = slow.filter((l) => {
        const t = Number(l.split(' ')[0]);
        return t >= from - 200 && t <= to + 100;
      });
      console.log(`  daemon callbacks of 10 ms or more in the run (ends, ms after the first due): ${inRun.length === 0 ? 'none' : ''}`);
      for (const l of inRun) {
        const [t, ms, ...what] = l.split(' ');
        console.log(`    ${at(Number(t))} ${ms} ms ${what.join(' ').slice(0, 140)}`);
      }
      const gcs = (existsSync(stallFile) ? readFileSync(stallFile, 'utf8').split('\n') : []).filter((l) => {
        const [t, stall, , major] = l.split(' ').map(Number);
        return t !== undefined && t >= from && t <= to + 100 && ((stall ?? 0) > 20 || (major ?? 0) > 0);
      });
      console.log(`  daemon's 100-ms windows with a stall over 20 ms or a full GC (end: stall, gc, full gc, longest pause): ${gcs.map((l) => { const [t, ...r] = l.split(' '); return `${at(Number(t))}: ${r.join('/')}`; }).join('; ') || 'none'}`);
    }
    return { fixed, max, list };
  } finally {
    // The sleeps lead their own process groups and outlive the daemon: end them through it first.
    const live = await call(c, 'GET', '/v1/tasks').then((a) => JSON.parse(a.body) as { id: string; state: string }[], () => []);
    for (const t of live) if (t.state === 'running') await call(c, 'POST', `/v1/tasks/${t.id}/kill`, { signal: 'SIGKILL' }).catch(() => undefined);
    c.agent.destroy();
    daemon.kill('SIGTERM');
    if (daemon.exitCode === null) await new Promise((r) => daemon.once('exit', r));
    daemons.delete(daemon);
    // Retried, as on an interrupt above: a task directory the spawner makes after its daemon was killed (an interrupted run, 2026-12-07) must not fail the removal.
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    stateDirs.delete(dir);
    // Once the killed tasks' processes have left it (up to 5 s).
    for (let i = 0; group !== null && i < 50; i++) {
      try {
        rmdirSync(group);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

/** Median and a 95% bootstrap interval of the median (fixed seed: the same data give the same interval). */
function medianCi(xs: readonly number[]): string {
  const med = pct(xs, 50);
  if (xs.length < 3) return med.toFixed(1);
  let seed = 0x2545f491;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const meds: number[] = [];
  for (let b = 0; b < 2000; b++) meds.push(pct(Array.from(xs, () => xs[Math.floor(rand() * xs.length)] ?? NaN), 50));
  const digits = med >= 100 ? 0 : 1;
  return `${med.toFixed(digits)} (${pct(meds, 2.5).toFixed(digits)}-${pct(meds, 97.5).toFixed(digits)})`;
}

const results = builds.map(() => [] as RoundResult[]);
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? builds.map((_, i) => i) : builds.map((_, i) => builds.length - 1 - i);
  for (const i of order) {
    const b = builds[i];
    if (!b) continue;
    const res = await round(b.bin);
    results[i]?.push(res);
    console.log(
      `round ${r + 1} ${b.name}: fixed ${res.fixed.acceptedPerS.toFixed(0)}/s p99 ${res.fixed.p99.toFixed(1)} ms; max ${res.max.acceptedPerS.toFixed(0)}/s p99 ${res.max.p99.toFixed(1)} ms; list ${res.list.tasks} tasks a poll, p99 ${res.list.p99.toFixed(1)} ms; CPU ${res.fixed.cpuPerTask.toFixed(2)}/${res.max.cpuPerTask.toFixed(2)} ms a submission${res.fixed.allCpuPerTask === null ? '' : ` (all: ${res.fixed.allCpuPerTask.toFixed(2)}/${(res.max.allCpuPerTask ?? NaN).toFixed(2)} ms a task)`}, ${res.list.cpuPerPoll.toFixed(2)} ms a poll`,
    );
  }
}

const rows: [string, (x: RoundResult) => number][] = [
  [`${RATE}/s offered: accepted/s`, (x) => x.fixed.acceptedPerS],
  [`${RATE}/s offered: POST p50 ms (from due)`, (x) => x.fixed.p50],
  [`${RATE}/s offered: POST p99 ms (from due)`, (x) => x.fixed.p99],
  [`${RATE}/s offered: client sent late p99 ms (its own delay, inside the POST p99)`, (x) => x.fixed.sendLateP99],
  [`${RATE}/s offered: to running p50 ms`, (x) => x.fixed.runP50],
  [`${RATE}/s offered: to running p99 ms`, (x) => x.fixed.runP99],
  [`max rate, ${CLIENTS} clients: accepted/s`, (x) => x.max.acceptedPerS],
  [`max rate, ${CLIENTS} clients: POST p50 ms`, (x) => x.max.p50],
  [`max rate, ${CLIENTS} clients: POST p99 ms`, (x) => x.max.p99],
  [`max rate, ${CLIENTS} clients: to running p99 ms`, (x) => x.max.runP99],
  ['daemon CPU ms per submission (both runs)', (x) => (x.fixed.cpuPerTask + x.max.cpuPerTask) / 2],
  ['all CPU ms per task: daemon and all it starts (both runs; cpuacct)', (x) => (x.fixed.allCpuPerTask === null || x.max.allCpuPerTask === null ? NaN : (x.fixed.allCpuPerTask + x.max.allCpuPerTask) / 2)],
  [`GET /v1/tasks at ${LIST_RATE}/s, ${LIST_TASKS}+ live tasks, ${LIST_WRITES_PER_S} writes/s: p50 ms`, (x) => x.list.p50],
  [`GET /v1/tasks ... p99 ms`, (x) => x.list.p99],
  ['GET /v1/tasks: daemon CPU ms per poll', (x) => x.list.cpuPerPoll],
  ['GET /v1/tasks: tasks per poll (first page, or all without pages)', (x) => x.list.tasks],
  ['GET /v1/tasks: KB per poll', (x) => x.list.kb],
];
const refused = results.map((rs) => rs.reduce((n, x) => n + x.fixed.refused + x.max.refused, 0));
console.log(`\nImmediate starts and the live list: medians over ${ROUNDS} interleaved rounds (95% bootstrap interval), simulated backend (${GPUS} GPUs), Unix socket, state on disk`);
console.log(`| measure | ${builds.map((b) => b.name).join(' | ')} |`);
console.log(`| --- | ${builds.map(() => '---').join(' | ')} |`);
for (const [name, f] of rows) console.log(`| ${name} | ${results.map((rs) => medianCi(rs.map(f))).join(' | ')} |`);
console.log(`submissions not accepted: ${builds.map((b, i) => `${b.name} ${refused[i]}`).join(', ')}`);
