import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseTaskCpuWeight } from './config.js';
import { AUTO_TASK_CPU_WEIGHT, findCpuHierarchy, setUpTaskCpu, weightToShares, type CgroupFs } from './task-cpu.js';

const V2_LINE = '36 25 0:31 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate';
const V1_CPU_LINE = '40 30 0:35 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct';
const V1_CPUSET_LINE = '41 30 0:36 / /sys/fs/cgroup/cpuset rw,nosuid shared:15 - cgroup cgroup rw,cpuset';
const V2_HYBRID_LINE = '37 30 0:32 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw';

/** A file system of cgroup files in memory; `failing`: paths whose write or mkdir fails with that code. */
function fakeFs(files: Record<string, string>, failing: Record<string, string> = {}): CgroupFs & { files: Record<string, string>; dirs: Set<string> } {
  const dirs = new Set<string>();
  const fail = (path: string): void => {
    const code = failing[path];
    if (code !== undefined) throw Object.assign(new Error(code), { code });
  };
  return {
    files,
    dirs,
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return text;
    },
    writeFile: (path, text) => {
      fail(path);
      files[path] = text;
    },
    mkdir: (path) => {
      fail(path);
      dirs.add(path);
    },
    rmdir: (path) => {
      fail(path);
      dirs.delete(path);
    },
  };
}

describe("the tasks' CPU group", () => {
  it('prefers cgroup v2 where its root delegates cpu, else a v1 cpu hierarchy, else none', () => {
    const delegated = fakeFs({ '/sys/fs/cgroup/cgroup.subtree_control': 'cpuset cpu io memory pids\n' });
    expect(findCpuHierarchy([V1_CPU_LINE, V2_LINE].join('\n'), delegated)).toEqual({ version: 2, mount: '/sys/fs/cgroup' });
    // v2 without cpu at its root (a hybrid layout's unified mount): the v1 cpu hierarchy
    const hybrid = fakeFs({ '/sys/fs/cgroup/unified/cgroup.subtree_control': '\n' });
    expect(findCpuHierarchy([V1_CPUSET_LINE, V2_HYBRID_LINE, V1_CPU_LINE].join('\n'), hybrid)).toEqual({ version: 1, mount: '/sys/fs/cgroup/cpu,cpuacct' });
    // `cpuset` is not `cpu`; a bind of a subtree is not the hierarchy
    const bound = V1_CPU_LINE.replace(' / /sys', ' /docker/abc /sys');
    expect(findCpuHierarchy([V1_CPUSET_LINE, bound, V2_HYBRID_LINE].join('\n'), hybrid)).toBeNull();
  });

  it('turns a v2 weight into v1 shares (100 is 1,024), within v1 bounds', () => {
    expect(weightToShares(100)).toBe(1024);
    expect(weightToShares(10)).toBe(102);
    expect(weightToShares(1)).toBe(10);
    expect(weightToShares(10000)).toBe(102400);
  });

  it('v2: enables cpu below the gpushare level, sets the weight, and puts the spawner in a leaf', () => {
    const fs = fakeFs({ '/sys/fs/cgroup/cgroup.subtree_control': 'cpu memory\n' });
    const out = setUpTaskCpu('auto', 'state-k', () => V2_LINE, fs);
    expect(out.kind).toBe('set');
    if (out.kind !== 'set') return;
    expect(fs.dirs.has('/sys/fs/cgroup/gpushare/state-k')).toBe(true);
    expect(fs.files['/sys/fs/cgroup/gpushare/cgroup.subtree_control']).toBe('+cpu');
    expect(fs.files['/sys/fs/cgroup/gpushare/state-k/cpu.weight']).toBe(String(AUTO_TASK_CPU_WEIGHT));
    expect(fs.files['/sys/fs/cgroup/gpushare/cpu.weight']).toBe(String(AUTO_TASK_CPU_WEIGHT)); // where it competes
    out.group.place(4321);
    expect(fs.dirs.has('/sys/fs/cgroup/gpushare/state-k/spawner')).toBe(true);
    expect(fs.files['/sys/fs/cgroup/gpushare/state-k/spawner/cgroup.procs']).toBe('4321');
    out.group.close();
    expect(fs.dirs.size).toBe(0);
  });

  it('v1: cpu.shares from the weight asked for, the spawner in the group itself', () => {
    const fs = fakeFs({});
    const out = setUpTaskCpu(50, 'state-k', () => V1_CPU_LINE, fs);
    expect(out.kind).toBe('set');
    if (out.kind !== 'set') return;
    expect(fs.files['/sys/fs/cgroup/cpu,cpuacct/gpushare/state-k/cpu.shares']).toBe('512');
    expect(fs.files['/sys/fs/cgroup/cpu,cpuacct/gpushare/cpu.shares']).toBe('512');
    out.group.place(77);
    expect(fs.files['/sys/fs/cgroup/cpu,cpuacct/gpushare/state-k/cgroup.procs']).toBe('77');
  });

  it('says why when it cannot, and whether the weight was asked for; off does nothing', () => {
    const denied = fakeFs({}, { '/sys/fs/cgroup/cpu,cpuacct/gpushare/state-k': 'EACCES' });
    expect(setUpTaskCpu('auto', 'state-k', () => V1_CPU_LINE, denied)).toEqual({
      kind: 'unavailable',
      problem: "the tasks' CPU weight could not be set (cannot create /sys/fs/cgroup/cpu,cpuacct/gpushare/state-k: EACCES)",
      asked: false,
    });
    expect(setUpTaskCpu(20, 'state-k', () => V2_HYBRID_LINE, fakeFs({}))).toMatchObject({ kind: 'unavailable', asked: true, problem: expect.stringContaining('no cgroup hierarchy with the cpu controller') });
    const untouched = fakeFs({});
    expect(setUpTaskCpu('off', 'state-k', () => V1_CPU_LINE, untouched)).toEqual({ kind: 'off' });
    expect(untouched.dirs.size + Object.keys(untouched.files).length).toBe(0);
  });

  it('reads the setting: auto, off or a weight 1-10000, and refuses anything else', () => {
    expect(parseTaskCpuWeight('auto')).toBe('auto');
    expect(parseTaskCpuWeight('off')).toBe('off');
    expect(parseTaskCpuWeight('25')).toBe(25);
    for (const bad of ['0', '10001', '-5', '1.5', 'low', '']) expect(() => parseTaskCpuWeight(bad)).toThrow(/not auto, off, or a weight from 1 to 10000/);
  });
});

const real = process.getuid?.() === 0 ? setUpTaskCpu('auto', `state-test-${process.pid}`) : null;
describe.skipIf(real?.kind !== 'set')(`the tasks' CPU group on this machine${real?.kind === 'set' ? '' : ' (skipped: needs root and a cpu cgroup)'}`, () => {
  it('holds a process placed in it and what it forks, and is removed once empty', async () => {
    if (real?.kind !== 'set') return;
    const group = real.group;
    // A shell that forks a child after it has been placed: the child must be inside too.
    const shell = spawn('/bin/sh', ['-c', 'read line; sleep 5 & echo $!; wait'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const pid = shell.pid;
    if (pid === undefined) throw new Error('no shell');
    group.place(pid);
    shell.stdin.write('go\n');
    const childPid = await new Promise<number>((resolve) => shell.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim()))));
    const relative = group.spawnerDir.slice(group.hierarchy.mount.length);
    const cpuLine = (p: number): string | undefined =>
      readFileSync(`/proc/${p}/cgroup`, 'utf8')
        .split('\n')
        .find((l) => (group.hierarchy.version === 2 ? l.startsWith('0::') : l.split(':')[1]?.split(',').includes('cpu')));
    expect(cpuLine(pid)?.endsWith(`:${relative}`)).toBe(true);
    expect(cpuLine(childPid)?.endsWith(`:${relative}`)).toBe(true);
    const weightFile = group.hierarchy.version === 2 ? `${group.dir}/cpu.weight` : `${group.dir}/cpu.shares`;
    expect(readFileSync(weightFile, 'utf8').trim()).toBe(group.hierarchy.version === 2 ? String(AUTO_TASK_CPU_WEIGHT) : String(weightToShares(AUTO_TASK_CPU_WEIGHT)));
    process.kill(childPid, 'SIGKILL');
    shell.kill('SIGKILL');
    await new Promise((resolve) => shell.once('close', resolve));
    group.close(); // retried while the killed processes are reaped
    for (let i = 0; i < 20 && existsSync(weightFile); i += 1) await new Promise((resolve) => setTimeout(resolve, 60));
    expect(existsSync(weightFile)).toBe(false);
  });
});
