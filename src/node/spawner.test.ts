import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findNativePaths } from './launcher.js';
import { readProcStat } from './proc.js';
import { decodeWaitStatus, MAX_EXITS_PER_TURN, SpawnError, Spawner, SpawnerLostError, type SpawnedExit } from './spawner.js';

const exec = findNativePaths().exec;
let dir: string;
let exits: Map<number, SpawnedExit>;
let lost: string[];
let spawner: Spawner;

function exitOf(pid: number, timeoutMs = 5000): Promise<SpawnedExit> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const e = exits.get(pid);
      if (e !== undefined) resolve(e);
      else if (Date.now() > deadline) reject(new Error(`no exit reported for ${pid}`));
      else setTimeout(check, 10);
    };
    check();
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gs-spawner-'));
  exits = new Map();
  lost = [];
  spawner = new Spawner(exec, { onExit: (pid, _startTime, e) => exits.set(pid, e), onLost: (why) => lost.push(why) });
});

afterEach(() => {
  spawner.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('spawner', () => {
  it('starts a program in its own session with its logs, directory and environment, and reports its pid, start time and exit', async () => {
    const out = join(dir, 'tasks', 'logs', 'stdout.log'); // its directories are made
    const err = join(dir, 'tasks', 'logs', 'stderr.log');
    const s = await spawner.spawn({ argv: ['/bin/sh', '-c', 'echo "$GREETING $(pwd)"; echo oops >&2; ps -o sid= -p $$ | tr -d " "; exit 3'], env: { GREETING: 'hello', PATH: '/usr/bin:/bin' }, cwd: dir, stdout: out, stderr: err });
    const st = readProcStat(s.pid);
    // The start time is the one /proc gives (the daemon names the process by it), unless it already ended.
    if (st !== null) expect(s.startTime).toBe(st.startTime);
    expect(await exitOf(s.pid)).toEqual({ code: 3, signal: null });
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(`hello ${dir}`);
    expect(Number(lines[1])).toBe(s.pid); // session leader
    expect(readFileSync(err, 'utf8')).toBe('oops\n');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'tasks')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'tasks', 'logs')).mode & 0o777).toBe(0o700);
  });

  it.skipIf(process.getuid?.() !== 0 || readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() !== '1')(
    "starts a root daemon's programs at a low CPU weight; a wrapper gives its command the normal weight back (root, autogroups on)",
    async () => {
      const [plain, wrapped] = [join(dir, 'plain.log'), join(dir, 'wrapped.log')];
      const a = await spawner.spawn({ argv: ['/bin/cat', '/proc/self/autogroup'], env: {}, cwd: '', stdout: plain, stderr: '' });
      // Read after the wrapper has seen the exec (it resets the weight then, beside its command).
      const b = await spawner.spawn({ argv: [exec, join(dir, 'status'), '--', '/bin/sh', '-c', 'sleep 0.3; cat /proc/self/autogroup'], env: { PATH: '/usr/bin:/bin' }, cwd: '', stdout: wrapped, stderr: '' });
      await Promise.all([exitOf(a.pid), exitOf(b.pid)]);
      expect(readFileSync(plain, 'utf8')).toMatch(/^\/autogroup-\d+ nice 10\n$/);
      expect(readFileSync(wrapped, 'utf8')).toMatch(/^\/autogroup-\d+ nice 0\n$/);
    },
  );

  it('starts programs with no signal ignored or blocked (the spawner ignores ^C, hangup and quit; a task never does)', async () => {
    const out = join(dir, 'sig.log');
    const s = await spawner.spawn({ argv: ['/bin/grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status'], env: {}, cwd: '', stdout: out, stderr: '' });
    await exitOf(s.pid);
    expect(readFileSync(out, 'utf8')).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('gives the start time /proc gives, for a process that is still running', async () => {
    const s = await spawner.spawn({ argv: ['/bin/sleep', '5'], env: {}, cwd: '', stdout: '', stderr: '' });
    expect(s.startTime).toBe(readProcStat(s.pid)?.startTime);
    process.kill(-s.pid, 'SIGTERM');
    expect(await exitOf(s.pid)).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('says where and why a start failed, and nothing runs', async () => {
    const fail = (r: Promise<unknown>): Promise<SpawnError> => r.then(() => { throw new Error('started'); }, (e: unknown) => e as SpawnError);
    const noCwd = await fail(spawner.spawn({ argv: ['/bin/true'], env: {}, cwd: join(dir, 'gone'), stdout: '', stderr: '' }));
    expect(noCwd).toBeInstanceOf(SpawnError);
    expect([noCwd.step, noCwd.code, noCwd.message]).toEqual(['cwd', 'ENOENT', 'entering its working directory failed: ENOENT']);
    const noProgram = await fail(spawner.spawn({ argv: [join(dir, 'missing')], env: {}, cwd: '', stdout: '', stderr: '' }));
    expect([noProgram.step, noProgram.code]).toEqual(['exec', 'ENOENT']);
    writeFileSync(join(dir, 'file'), '');
    const badLog = await fail(spawner.spawn({ argv: ['/bin/true'], env: {}, cwd: '', stdout: '', stderr: join(dir, 'file', 'b', 'c.log') }));
    expect([badLog.step, badLog.code]).toEqual(['stderr', 'ENOTDIR']);
    // It still serves requests after failures.
    const ok = await spawner.spawn({ argv: ['/bin/true'], env: {}, cwd: '', stdout: '', stderr: '' });
    expect(await exitOf(ok.pid)).toEqual({ code: 0, signal: null });
  });

  it('answers many requests in order, and reports every exit', async () => {
    const started = await Promise.all(Array.from({ length: 50 }, (_, i) => spawner.spawn({ argv: ['/bin/sh', '-c', `exit ${i % 7}`], env: {}, cwd: '', stdout: '', stderr: '' })));
    expect(new Set(started.map((s) => s.pid)).size).toBe(50);
    const ended = await Promise.all(started.map((s) => exitOf(s.pid)));
    expect(ended.map((e) => e.code)).toEqual(started.map((_, i) => i % 7));
  });

  it('reports a burst of exits at most MAX_EXITS_PER_TURN a turn, each turn its own batch, every one', async () => {
    const batches: number[][] = [];
    const s = new Spawner(exec, {
      batch: (report) => {
        batches.push([]);
        report();
      },
      onExit: (pid) => batches[batches.length - 1]?.push(pid),
      onLost: (why) => lost.push(why),
    });
    try {
      const n = 3 * MAX_EXITS_PER_TURN + 5;
      const started = await Promise.all(Array.from({ length: n }, () => s.spawn({ argv: ['/bin/sleep', '0.2'], env: {}, cwd: '', stdout: '', stderr: '' })));
      // The loop held while they all end: their exits wait in the pipe and are read at once.
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        // busy
      }
      const deadline = Date.now() + 5000;
      while (batches.flat().length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(batches.flat().sort()).toEqual(started.map((x) => x.pid).sort());
      expect(Math.max(...batches.map((b) => b.length))).toBe(MAX_EXITS_PER_TURN);
      expect(batches.length).toBeGreaterThanOrEqual(4);
    } finally {
      s.close();
    }
  });

  it('when it dies, unanswered requests are lost, the loss is reported, and the next request starts a new one', async () => {
    const first = await spawner.spawn({ argv: ['/bin/sleep', '5'], env: {}, cwd: '', stdout: '', stderr: '' });
    const spawnerPid = readFileSync(`/proc/${first.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1];
    process.kill(Number(spawnerPid), 'SIGKILL');
    const deadline = Date.now() + 5000;
    while (lost.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(lost).toEqual(['killed by SIGKILL']);
    // What it started runs on.
    expect(readProcStat(first.pid)?.startTime).toBe(first.startTime);
    process.kill(-first.pid, 'SIGKILL');
    const next = await spawner.spawn({ argv: ['/bin/true'], env: {}, cwd: '', stdout: '', stderr: '' });
    expect(await exitOf(next.pid)).toEqual({ code: 0, signal: null });
    spawner.close();
    await expect(spawner.spawn({ argv: ['/bin/true'], env: {}, cwd: '', stdout: '', stderr: '' })).rejects.toBeInstanceOf(SpawnerLostError);
  });

  it('runs a program to its end as another user; its exit goes to the caller, not to onExit', async () => {
    chmodSync(dir, 0o777);
    const asRoot = process.getuid?.() === 0;
    const user = asRoot ? { uid: 65534, gid: 65534 } : undefined;
    const exit = await spawner.run({ argv: ['/bin/sh', '-c', `id -u > ${join(dir, 'who')}; id -G >> ${join(dir, 'who')}; exit 4`], env: {}, cwd: dir, stdout: '', stderr: '', user });
    expect(exit).toEqual({ code: 4, signal: null });
    const [uid, groups] = readFileSync(join(dir, 'who'), 'utf8').trim().split('\n');
    expect(Number(uid)).toBe(asRoot ? 65534 : process.getuid?.());
    if (asRoot) expect(groups).toBe('65534'); // its own group only: root's supplementary groups are gone
    await new Promise((r) => setTimeout(r, 50));
    expect(exits.size).toBe(0);
  });

  it('a spawner that cannot be started fails its starts for good (no retry chain); one that keeps dying is refused after three losses', async () => {
    const missing = new Spawner(join(dir, 'no-such-exec'), { onExit: () => undefined, onLost: () => undefined });
    const e = await missing.spawn({ argv: ['/bin/true'], env: {}, cwd: '', stdout: '', stderr: '' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(SpawnError);
    expect((e as SpawnError).step).toBe('fork');
    missing.close();
    // /bin/false as the spawner: it runs, answers nothing and exits.
    const losses: string[] = [];
    const broken = new Spawner('/bin/false', { onExit: () => undefined, onLost: (why) => losses.push(why) });
    for (let i = 0; i < 3; i++) await expect(broken.spawn({ argv: ['/bin/true'], env: {}, cwd: '', stdout: '', stderr: '' })).rejects.toBeInstanceOf(SpawnerLostError);
    expect(losses).toEqual(['exited with status 1', 'exited with status 1', 'exited with status 1']);
    const refused = await broken.spawn({ argv: ['/bin/true'], env: {}, cwd: '', stdout: '', stderr: '' }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SpawnError);
    expect((refused as SpawnError).message).toMatch(/died 3 times without answering/);
    broken.close();
  });

  it("a program run to its end is answered even when the spawner dies first (its end unknown)", async () => {
    const running = spawner.run({ argv: ['/bin/sleep', '0.5'], env: {}, cwd: '', stdout: '', stderr: '' });
    const first = await spawner.spawn({ argv: ['/bin/sleep', '5'], env: {}, cwd: '', stdout: '', stderr: '' });
    const spawnerPid = Number(readFileSync(`/proc/${first.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
    process.kill(spawnerPid, 'SIGKILL');
    expect(await running).toEqual({ code: null, signal: null });
    process.kill(-first.pid, 'SIGKILL');
  });

  it('reads wait statuses as waitpid(2) lays them out', () => {
    expect(decodeWaitStatus(0)).toEqual({ code: 0, signal: null });
    expect(decodeWaitStatus(3 << 8)).toEqual({ code: 3, signal: null });
    expect(decodeWaitStatus(9)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(decodeWaitStatus(15 | 0x80)).toEqual({ code: null, signal: 'SIGTERM' }); // core dumped
  });
});

describe("the spawner's start hook (task-cpu.ts places it)", () => {
  it('is told the pid of each new spawner before it is sent anything, and a throw there does not stop the starts', async () => {
    const placed: { pid: number }[] = [];
    const failures: unknown[] = [];
    const hooked = new Spawner(exec, {
      onExit: (pid, _startTime, e) => exits.set(pid, e),
      onLost: (why) => lost.push(why),
      onStart: (pid) => {
        placed.push({ pid });
        if (placed.length === 1) throw new Error('no cgroup here');
      },
      onPlaceFailed: (err) => failures.push(err),
    });
    try {
      const child = await hooked.spawn({ argv: ['/bin/sleep', '5'], env: {}, cwd: '', stdout: '', stderr: '' });
      expect(placed).toHaveLength(1);
      expect(failures).toHaveLength(1);
      // The program was started by the process the hook was told of (its parent, field 4 of /proc/PID/stat).
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])).toBe(placed[0]?.pid);
      process.kill(child.pid, 'SIGKILL');
      await exitOf(child.pid);
      await hooked.spawn({ argv: ['/bin/true'], env: {}, cwd: '', stdout: '', stderr: '' });
      expect(placed).toHaveLength(1); // the same spawner: not placed again
    } finally {
      hooked.close();
    }
  });
});
