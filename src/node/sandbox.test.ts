import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Task, TaskGpu } from '../contract/task.js';
import type { SandboxConfig } from './config.js';
import { claimUidRange, removeOwnDir, Sandbox, sandboxUsers, type SandboxOptions } from './sandbox.js';
import { DEFAULT_UID_BASE } from './sandbox-plan.js';
import { openDatabase } from './store/db.js';
import { TenantUidStore } from './store/tenant-uids.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-sandbox-'));
const accounts = { passwd: join(dir, 'passwd'), group: join(dir, 'group'), subuid: join(dir, 'subuid'), subgid: join(dir, 'absent') };
writeFileSync(accounts.passwd, 'root:x:0:0::/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n');
writeFileSync(accounts.group, 'video:x:44:alice\n');
writeFileSync(accounts.subuid, 'alice:100000:65536\n');
const config: SandboxConfig = { users: 'auto', uidBase: DEFAULT_UID_BASE, uidCount: 65_536, noTenant: 'allocated', passEnv: ['CUDA_HOME'], taskDir: join(dir, 'tasks'), cgroup: 'off' };
let n = 0;
const sandboxes: Sandbox[] = [];

function open(over: Partial<SandboxOptions> = {}, db = openDatabase(join(dir, `db-${n++}`))): Sandbox {
  const s = new Sandbox({ config, stateDir: '/state', usersOn: true, usersProblem: null, runAs: new Map([['team-a', { user: 'alice' }]]), uids: new TenantUidStore(db), daemonEnv: { GPUSHARE_TOKEN: 'secret', CUDA_HOME: '/cuda', LANG: 'C' }, now: () => 1, accounts, ...over });
  sandboxes.push(s);
  return s;
}

afterEach(() => {
  for (const s of sandboxes.splice(0)) s.close();
});

describe('Sandbox', () => {
  it('decides users by root and the setting, refusing "on" without root', () => {
    expect(sandboxUsers({ ...config, users: 'auto' }, true)).toEqual({ on: true, problem: null });
    expect(sandboxUsers({ ...config, users: 'auto' }, false)).toMatchObject({ on: false, problem: expect.stringMatching(/not root/) });
    expect(sandboxUsers({ ...config, users: 'off' }, true)).toEqual({ on: false, problem: 'sandbox.users is off' });
    expect(() => sandboxUsers({ ...config, users: 'on' }, false)).toThrow(/sandbox.users is on, but the daemon is not root/);
  });

  it('runs configured tenants as their account, allocates one uid per other tenant once, and keeps it across restarts', () => {
    const db = openDatabase(join(dir, 'shared-db'));
    const s = open({}, db);
    expect(s.userFor('team-a')).toEqual({ uid: 1001, gid: 1001, groups: [44], name: 'alice', home: '/home/alice' });
    const b = s.userFor('team-b');
    const c = s.userFor('team-c');
    const none = s.userFor(null);
    expect([b?.uid, c?.uid, none?.uid]).toEqual([DEFAULT_UID_BASE, DEFAULT_UID_BASE + 1, DEFAULT_UID_BASE + 2]);
    expect(none?.name).toBe('gpushare');
    // A new daemon on the same database: the same uids, in whatever order asked.
    const again = open({}, db);
    expect(again.userFor(null)?.uid).toBe(DEFAULT_UID_BASE + 2);
    expect(again.userFor('team-b')?.uid).toBe(DEFAULT_UID_BASE);
    expect(again.userFor('team-d')?.uid).toBe(DEFAULT_UID_BASE + 3);
  });

  it('gives a task a clean environment, its own directory as HOME and the wrapper its user', () => {
    const s = open();
    const region = s.regionPath('abc123');
    expect(region).toMatch(/\/tasks\/state-[0-9a-f]{12}\/abc123\/region$/);
    expect((statSync(join(region ?? '', '..', '..')).mode & 0o777)).toBe(0o711);
    const task = { id: 'abc123', tenant: 'team-b', pid: null, regionPath: region, stdoutPath: '/state/tasks/abc123/stdout.log' } as unknown as Task;
    const { baseEnv, wrapperEnv } = s.prepare(task);
    const own = join(region ?? '', '..');
    expect(baseEnv).toEqual({ PATH: expect.any(String), HOME: own, USER: 'gpushare-team-b', LOGNAME: 'gpushare-team-b', LANG: 'C', CUDA_HOME: '/cuda' });
    expect(wrapperEnv).toEqual({ GPUSHARE_EXEC_UID: String(DEFAULT_UID_BASE), GPUSHARE_EXEC_GID: String(DEFAULT_UID_BASE), GPUSHARE_EXEC_GROUPS: '', GPUSHARE_EXEC_OWN_DIR: own });
    // The next task of the same user: its own HOME, the rest as before (made once per user).
    const next = { ...task, id: 'abc125', regionPath: s.regionPath('abc125') } as unknown as Task;
    expect(s.prepare(next).baseEnv).toEqual({ ...baseEnv, HOME: join(s.regionPath('abc125') ?? '', '..') });
    expect(s.prepare(task).baseEnv).toEqual(baseEnv);
    expect(s.notices()).toEqual([
      expect.stringMatching(/tasks run as their tenant's own unprivileged user/),
      'gpushare serve: no per-task cgroups (per-task cgroups are off (sandbox.cgroup: off)): killing a task reaches its process group only; processes that leave it (setsid) survive.',
    ]);
  });

  it("puts a task's compute on its user's own boards, one per GPU, in a directory every task lists and only root writes", () => {
    const s = open();
    const task = { id: 'abc124', tenant: 'team-a', pid: null, regionPath: s.regionPath('abc124'), stdoutPath: '/state/tasks/abc124/stdout.log' } as unknown as Task;
    const gpus = [{ uuid: 'GPU-AB12CD34-0000-4000-8000-000000000001' }, { uuid: 'MIG-5e6f0000-0000-4000-8000-000000000002' }] as TaskGpu[];
    const boards = join(dir, 'tasks', 'compute');
    expect(s.prepare(task, gpus).wrapperEnv).toMatchObject({
      GPUSHARE_COMPUTE_DIR: boards,
      GPUSHARE_COMPUTE_BOARD: 'per-user',
      GPUSHARE_EXEC_BOARDS: `${boards}/gpushare-compute-GPU-ab12cd34-0000-4000-8000-000000000001.u1001:${boards}/gpushare-compute-GPU-5e6f0000-0000-4000-8000-000000000002.u1001`,
    });
    expect(statSync(boards).mode & 0o7777).toBe(0o755);
    // Without GPUs there is no board to make.
    expect(Object.keys(s.prepare(task, []).wrapperEnv).filter((k) => k.includes('BOARD'))).toEqual([]);
  });

  it('runs tasks as the daemon\'s user without users, and says so', () => {
    const s = open({ usersOn: false, usersProblem: 'the daemon is not root (uid 1000), so it cannot switch users' });
    expect(s.userFor('team-b')).toBeNull();
    expect(s.regionPath('abc')).toBeNull();
    // Nor boards per user: its tasks share one board per GPU, as any process under libgpushare does.
    expect(s.prepare({ id: 'abc', tenant: 'team-b', pid: null, regionPath: '/state/tasks/abc/region', stdoutPath: '/state/tasks/abc/stdout.log' } as unknown as Task, [{ uuid: 'GPU-1' } as TaskGpu]).wrapperEnv).toEqual({});
    expect(s.notices()).toEqual([expect.stringMatching(/tasks run as the daemon's own user \(the daemon is not root .*\): tenants are separated only at the API/)]);
    expect(s.status()).toEqual({ users: false, usersProblem: expect.stringMatching(/not root/), cgroupRoot: null, cgroupProblem: expect.any(String) });
  });

  it.each([
    ['an unknown account', { runAs: new Map([['t', { user: 'mallory' }]]) }, /tenant "t": runAs: no user "mallory"/],
    ['root', { runAs: new Map([['t', { user: 'root' }]]) }, /never run as root/],
    ['a uid range holding an account', { config: { ...config, uidBase: 1000, uidCount: 10 } }, /uid range 1000-1009 for tenants' users is not free \(user alice has uid 1001\)/],
    ['a uid range holding subordinate ids', { config: { ...config, uidBase: 150_000 } }, /subordinate ids 100000-165535 belong to alice/],
  ])('refuses to start with %s', (_name, over, message) => {
    expect(() => open(over as Partial<SandboxOptions>)).toThrow(message);
  });

  it('refuses a task directory that is a link', () => {
    const real = join(dir, 'elsewhere');
    mkdirSync(real);
    symlinkSync(real, join(dir, 'linked'));
    expect(() => open({ config: { ...config, taskDir: join(dir, 'linked') } })).toThrow(/is not a directory of the daemon's user/);
  });
});

const root = process.getuid?.() === 0;
describe.skipIf(!root)(`removing a task's own directory${root ? '' : ' (skipped: needs root to own files as another user)'}`, () => {
  // As the task directory's parent is (sandbox.ts sharedRootDir): others pass through, never list.
  if (root) chmodSync(dir, 0o711);
  it("empties it with its owner's rights, never root's: what the owner could not delete stays", async () => {
    const own = join(dir, 'own-1');
    mkdirSync(join(own, 'mine'), { recursive: true });
    writeFileSync(join(own, 'mine', 'f'), 'x');
    // A directory the owner cannot write: root walking the tree would empty it, the owner cannot.
    mkdirSync(join(own, 'roots'));
    writeFileSync(join(own, 'roots', 'keep'), 'x');
    chmodSync(join(own, 'roots'), 0o755);
    for (const p of [own, join(own, 'mine'), join(own, 'mine', 'f')]) chownSync(p, 65534, 65534);
    await expect(removeOwnDir(own)).rejects.toThrow(/ENOTEMPTY/);
    expect(existsSync(join(own, 'mine'))).toBe(false);
    expect(existsSync(join(own, 'roots', 'keep'))).toBe(true);
  });

  it('removes a whole tree its owner made, and the directory itself', async () => {
    const own = join(dir, 'own-2');
    mkdirSync(join(own, 'a', 'b'), { recursive: true });
    writeFileSync(join(own, 'a', 'b', 'f'), 'x');
    symlinkSync('/etc', join(own, 'a', 'link'));
    for (const p of [own, join(own, 'a'), join(own, 'a', 'b'), join(own, 'a', 'b', 'f')]) chownSync(p, 65534, 65534);
    await removeOwnDir(own);
    expect(existsSync(own)).toBe(false);
    expect(existsSync('/etc/passwd')).toBe(true);
  });
});

describe.skipIf(!root)(`removing a task's own directory its wrapper emptied${root ? '' : ' (skipped: needs root)'}`, () => {
  const starts: string[][] = [];
  const runAs = async (argv: readonly string[]): Promise<void> => {
    starts.push([...argv]);
  };
  it('removes the region and the directory without starting anything', async () => {
    for (const [name, files] of [['own-3', ['region']], ['own-4', []]] as const) {
      const own = join(dir, name);
      mkdirSync(own);
      for (const f of files) writeFileSync(join(own, f), 'x');
      chownSync(own, 65534, 65534);
      await removeOwnDir(own, runAs);
      expect(existsSync(own)).toBe(false);
    }
    expect(starts).toEqual([]);
  });

  it("starts its user's rm when more is left (what the task's processes wrote after its command ended)", async () => {
    const own = join(dir, 'own-5');
    mkdirSync(join(own, 'late'), { recursive: true });
    writeFileSync(join(own, 'region'), 'x');
    chownSync(own, 65534, 65534);
    // The fake rm empties it, as the user's would.
    await removeOwnDir(own, async (argv) => {
      starts.push([...argv]);
      rmSync(join(own, 'late'), { recursive: true });
    });
    expect(starts).toEqual([[expect.stringMatching(/rm$/), '-rf', '--', own]]);
    expect(existsSync(own)).toBe(false);
  });
});

describe("claiming the tenants' uid range", () => {
  it("refuses a range overlapping another live daemon's, takes over a dead one's, and keeps its own", () => {
    const shared = mkdtempSync(join(tmpdir(), 'gpushare-uids-'));
    const [a, b] = [join(shared, 'state-a'), join(shared, 'state-b')];
    mkdirSync(a);
    mkdirSync(b);
    claimUidRange(shared, 1000, 100, a);
    claimUidRange(shared, 1000, 100, a); // its own claim, again at its next start
    claimUidRange(shared, 1100, 100, b); // beside it: no overlap
    expect(() => claimUidRange(shared, 1050, 100, b)).toThrow(/the uids 1050-1149 overlap 1000-1099, which the daemon of state directory .*state-a allocates/);
    expect(readFileSync(join(shared, 'uids-1000-100'), 'utf8').trim()).toBe(a);
    rmSync(a, { recursive: true });
    claimUidRange(shared, 1050, 100, b); // a's state is gone: its claim is stale
    expect(existsSync(join(shared, 'uids-1000-100'))).toBe(false);
    expect(readFileSync(join(shared, 'uids-1050-100'), 'utf8').trim()).toBe(b);
  });
});
