import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cgroup2Mount, setUpCgroups, TaskCgroups, taskCgroupPath } from './cgroup.js';

const PURE_V2 = '25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n36 25 0:31 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - cgroup2 cgroup2 rw,nsdelegate\n';
const HYBRID = [
  '35 25 0:30 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755',
  '36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate',
  '37 35 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory',
].join('\n');
const V1_ONLY = '37 35 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory\n';
const CONTAINER_VIEW = '1200 1100 0:31 /kubepods/pod1 /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n';

describe('cgroup v2', () => {
  it.each([
    ['pure v2', PURE_V2, '/sys/fs/cgroup'],
    ['the hybrid layout', HYBRID, '/sys/fs/cgroup/unified'],
    ['v1 only', V1_ONLY, null],
    ['a container\'s view of a subtree', CONTAINER_VIEW, null],
    ['a mount point with a space', '36 25 0:31 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n', '/mnt/my cgroup'],
  ])('finds the mount: %s', (_name, text, expected) => {
    expect(cgroup2Mount(text)).toBe(expected);
  });

  it('plans one level per tenant, one directory per task', () => {
    expect(taskCgroupPath('/sys/fs/cgroup/gpushare/state-1', 'team-a', 'abc')).toBe('/sys/fs/cgroup/gpushare/state-1/tenant-team-a/task-abc');
    expect(taskCgroupPath('/r', null, 'abc')).toBe('/r/no-tenant/task-abc');
    // "cgroup.procs" is a tenant name but never a directory name here (every level has a prefix).
    expect(taskCgroupPath('/r', 'cgroup.procs', 'abc')).toBe('/r/tenant-cgroup.procs/task-abc');
  });

  it('says why there are no cgroups', () => {
    expect(setUpCgroups('off', 'k')).toEqual({ ok: false, problem: 'per-task cgroups are off (sandbox.cgroup: off)' });
    expect(setUpCgroups('auto', 'k', () => V1_ONLY)).toEqual({ ok: false, problem: 'no cgroup v2 hierarchy is mounted' });
    expect(setUpCgroups('auto', 'k', () => {
      throw new Error('EACCES');
    })).toEqual({ ok: false, problem: 'cannot read /proc/self/mountinfo: EACCES' });
  });
});

const setup = process.getuid?.() === 0 ? setUpCgroups('auto', `state-test-${process.pid}`) : null;
describe.skipIf(setup?.ok !== true)(`a task's cgroup at its end${setup?.ok === true ? '' : ' (skipped: needs root and a writable cgroup v2)'}`, () => {
  const waitFor = async (what: () => boolean): Promise<void> => {
    for (let i = 0; i < 100 && !what(); i++) await new Promise((r) => setTimeout(r, 50));
  };

  it('removes an empty one, and kills what is left in one that is not, then removes it', async () => {
    if (setup?.ok !== true) return;
    const problems: string[] = [];
    const cgroups = new TaskCgroups(setup.root, (m) => problems.push(m));
    const [empty, busy] = [cgroups.pathOf('t', 'empty'), cgroups.pathOf('t', 'busy')];
    mkdirSync(empty, { recursive: true });
    mkdirSync(busy);
    const left = spawn('sleep', ['30'], { stdio: 'ignore' });
    const gone = new Promise((r) => left.once('exit', (_code, signal) => r(signal)));
    writeFileSync(`${busy}/cgroup.procs`, String(left.pid));
    cgroups.release('t', 'empty');
    cgroups.release('t', 'busy');
    expect(await gone).toBe('SIGKILL');
    await waitFor(() => !existsSync(busy) && !existsSync(empty));
    expect([existsSync(empty), existsSync(busy), problems]).toEqual([false, false, []]);
    cgroups.close();
    rmdirSync(`${setup.root}/tenant-t`);
    rmdirSync(setup.root);
  });
});
