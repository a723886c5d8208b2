import { describe, expect, it } from 'vitest';
import { allocatedUser, baseEnvironment, canEnter, daemonKey, DEFAULT_PATH, DEFAULT_UID_BASE, grantVariable, groupsOf, nextFreeUid, parsePasswd, rangeConflicts, resolveRunAs, wrapperVariables } from './sandbox-plan.js';

const PASSWD = ['root:x:0:0:root:/root:/bin/bash', 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin', 'alice:x:1001:1001:Alice:/home/alice:/bin/bash', 'broken line', 'bob:x:notanumber:1:b:/home/bob:/bin/sh'].join('\n');
const GROUP = ['root:x:0:', 'video:x:44:alice,carol', 'render:x:109:alice', 'alice:x:1001:', 'wheel:x:10:bob'].join('\n');
const passwd = parsePasswd(PASSWD);

describe('users from /etc/passwd and /etc/group', () => {
  it('reads well-formed entries and skips the rest', () => {
    expect(passwd.map((p) => p.name)).toEqual(['root', 'nobody', 'alice']);
    expect(passwd[2]).toEqual({ name: 'alice', uid: 1001, gid: 1001, home: '/home/alice' });
  });

  it('finds the supplementary groups that list a user', () => {
    expect(groupsOf('alice', GROUP)).toEqual([44, 109]);
    expect(groupsOf('nobody', GROUP)).toEqual([]);
  });

  it.each([
    ['a local user by name, with its groups and home', { user: 'alice' }, { uid: 1001, gid: 1001, groups: [44, 109], name: 'alice', home: '/home/alice' }],
    ['numeric ids of a user passwd knows', { uid: 1001, gid: 44 }, { uid: 1001, gid: 44, groups: [], name: 'alice', home: '/home/alice' }],
    ['numeric ids of an NSS-only user', { uid: 5000, gid: 5000, groups: [44] }, { uid: 5000, gid: 5000, groups: [44], name: '5000', home: null }],
  ])('resolves %s', (_name, runAs, expected) => {
    expect(resolveRunAs(runAs, passwd, GROUP, 'tenant "t": runAs')).toEqual(expected);
  });

  it.each([
    ['an unknown user', { user: 'mallory' }, /tenant "t": runAs: no user "mallory" in \/etc\/passwd/],
    ['root by name', { user: 'root' }, /never run as root/],
    ['uid 0', { uid: 0, gid: 5 }, /never run as root/],
    ['group 0', { uid: 5, gid: 0 }, /never run as root/],
    ['supplementary group 0', { uid: 5, gid: 5, groups: [0] }, /never run as root/],
  ])('refuses %s', (_name, runAs, message) => {
    expect(() => resolveRunAs(runAs, passwd, GROUP, 'tenant "t": runAs')).toThrow(message);
  });
});

describe('allocated users', () => {
  it('gives each tenant a uid that is also its only group', () => {
    expect(allocatedUser('team-a', DEFAULT_UID_BASE + 3)).toEqual({ uid: DEFAULT_UID_BASE + 3, gid: DEFAULT_UID_BASE + 3, groups: [], name: 'gpushare-team-a', home: null });
    expect(allocatedUser(null, 7).name).toBe('gpushare');
  });

  it.each([
    ['an empty range', [], 100],
    ['the first gap', [100, 101, 103], 102],
    ['the end of a full prefix', [100, 101, 102], 103],
    ['taken uids outside the range are ignored', [5, 99, 104], 100],
  ])('picks the lowest free uid: %s', (_name, taken, expected) => {
    expect(nextFreeUid(100, 5, taken)).toBe(expected);
  });

  it('says when the range is full', () => {
    expect(nextFreeUid(100, 3, [100, 101, 102])).toBeNull();
  });

  it('finds accounts and subordinate ids inside the range', () => {
    const subuid = 'alice:100000:65536\ncarol:1900065000:100\nmalformed\n';
    expect(rangeConflicts(DEFAULT_UID_BASE, 65_536, passwd, subuid)).toEqual(['subordinate ids 1900065000-1900065099 belong to carol']);
    expect(rangeConflicts(1000, 10, passwd, subuid)).toEqual(['user alice has uid 1001']);
    expect(rangeConflicts(DEFAULT_UID_BASE, 65_000, passwd, subuid)).toEqual([]);
  });

  it('keys the shared directories by state directory', () => {
    expect(daemonKey('/var/lib/gpushare')).toMatch(/^state-[0-9a-f]{12}$/);
    expect(daemonKey('/var/lib/gpushare')).toBe(daemonKey('/var/lib/gpushare'));
    expect(daemonKey('/var/lib/gpushare')).not.toBe(daemonKey('/srv/gpushare'));
  });
});

describe('the environment a task starts from', () => {
  const daemon = { PATH: '/opt/daemon/bin', HOME: '/root', GPUSHARE_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'secret', LANG: 'en_US.UTF-8', LC_ALL: 'C', TZ: 'UTC', CUDA_HOME: '/usr/local/cuda', TERM: 'xterm' };

  it('has a PATH, its user, and the daemon\'s locale, never the rest of the daemon\'s environment', () => {
    expect(baseEnvironment({ name: 'gpushare-a', home: '/var/lib/gpushare/tasks/x/id' }, daemon, [])).toEqual({
      PATH: DEFAULT_PATH,
      HOME: '/var/lib/gpushare/tasks/x/id',
      USER: 'gpushare-a',
      LOGNAME: 'gpushare-a',
      LANG: 'en_US.UTF-8',
      LC_ALL: 'C',
      TZ: 'UTC',
    });
  });

  it('passes on the daemon variables named in passEnv, and only those', () => {
    const env = baseEnvironment({ name: 'alice', home: '/home/alice' }, daemon, ['CUDA_HOME', 'NOT_SET']);
    expect(env['CUDA_HOME']).toBe('/usr/local/cuda');
    expect('NOT_SET' in env).toBe(false);
    expect(env['GPUSHARE_TOKEN']).toBeUndefined();
  });

  it('asks the wrapper for the user and the cgroup', () => {
    expect(wrapperVariables({ uid: 1001, gid: 1001, groups: [44, 109], name: 'alice', home: null }, '/sys/fs/cgroup/gpushare/k/tenant-a/task-1', '/var/lib/gpushare/tasks/k/1')).toEqual({
      GPUSHARE_EXEC_CGROUP: '/sys/fs/cgroup/gpushare/k/tenant-a/task-1',
      GPUSHARE_EXEC_UID: '1001',
      GPUSHARE_EXEC_GID: '1001',
      GPUSHARE_EXEC_GROUPS: '44,109',
      GPUSHARE_EXEC_OWN_DIR: '/var/lib/gpushare/tasks/k/1',
    });
    // The daemon's own user (noTenant: daemon) may still get a cgroup; it has no directory to be given.
    expect(wrapperVariables(null, '/c', '/o')).toEqual({ GPUSHARE_EXEC_CGROUP: '/c' });
    expect(wrapperVariables(null, null, null)).toEqual({});
  });
});

describe('canEnter: the working directory as the task\'s user would find it', () => {
  const dirs: Record<string, { uid: number; gid: number; mode: number }> = {
    '/': { uid: 0, gid: 0, mode: 0o755 },
    '/home': { uid: 0, gid: 0, mode: 0o755 },
    '/home/alice': { uid: 1000, gid: 1000, mode: 0o700 },
    '/home/alice/work': { uid: 1000, gid: 1000, mode: 0o755 },
    '/srv': { uid: 0, gid: 50, mode: 0o750 },
    '/srv/data': { uid: 0, gid: 0, mode: 0o755 },
  };
  const seen: string[] = [];
  const statOf = (path: string) => {
    seen.push(path);
    const d = dirs[path];
    return d === undefined ? null : { ...d, isDirectory: true };
  };
  const alice = { uid: 1000, gid: 1000, groups: [] };
  const bob = { uid: 1001, gid: 1001, groups: [] };
  const staff = { uid: 1002, gid: 1002, groups: [50] };

  it('follows owner, then group, then others, down every directory', () => {
    expect(canEnter('/home/alice/work', alice, statOf)).toBe(true);
    expect(canEnter('/home/alice/work', bob, statOf)).toBe(false);
    expect(canEnter('/srv/data', staff, statOf)).toBe(true);
    expect(canEnter('/srv/data', bob, statOf)).toBe(false);
    expect(canEnter('/home/alice/work', { uid: 0, gid: 0, groups: [] }, statOf)).toBe(true);
    expect(canEnter('/home/alice/../alice/work', alice, statOf)).toBe(true);
    expect(canEnter('relative/path', alice, statOf)).toBe(false);
    expect(canEnter('/home/alice/missing', alice, statOf)).toBe(false);
  });

  it('stops at the first directory it may not search: what lies below is never looked at', () => {
    seen.length = 0;
    expect(canEnter('/home/alice/work/secret', bob, statOf)).toBe(false);
    expect(seen).toEqual(['/', '/home', '/home/alice']);
  });
});

describe("a task's compute grant (GPUSHARE_EXEC_GRANT)", () => {
  const boards = { GPUSHARE_EXEC_BOARDS: '/b/gpushare-compute-GPU-1.u1001', GPUSHARE_ISOLATION: 'time-slice' };
  it.each([
    ['a hard limit, as the library lays it out', { GPUSHARE_COMPUTE_LIMIT: '30', GPUSHARE_PRIORITY: 'normal' }, '300000,1,1'],
    ['a work-conserving limit', { GPUSHARE_COMPUTE_LIMIT: '30', GPUSHARE_PRIORITY: 'high', GPUSHARE_COMPUTE_POLICY: 'share' }, '300000,2,2'],
    ['a priority without a limit: the whole GPU, work-conserving', { GPUSHARE_PRIORITY: 'low' }, '1000000,0,2'],
    ['a policy the library would not know: hard, its default', { GPUSHARE_COMPUTE_LIMIT: '100', GPUSHARE_COMPUTE_POLICY: 'SHARE' }, '1000000,1,1'],
  ])('%s', (_what, env, want) => {
    expect(grantVariable({ ...boards, ...env })).toEqual({ GPUSHARE_EXEC_GRANT: want });
  });

  it('has none without boards or for an SM partition, and refuses a limit the library would not read', () => {
    expect(grantVariable({ GPUSHARE_COMPUTE_LIMIT: '30' })).toEqual({});
    expect(grantVariable({ ...boards, GPUSHARE_ISOLATION: 'sm-partition', GPUSHARE_COMPUTE_LIMIT: '30' })).toEqual({});
    expect(() => grantVariable({ ...boards, GPUSHARE_COMPUTE_LIMIT: '33.3' })).toThrow(/not a whole percent/);
  });
});
