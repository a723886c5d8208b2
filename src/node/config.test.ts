import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseListen } from './config.js';
import { defaultPaths, ensurePrivateDir, SYSTEM_PATHS } from './paths.js';

describe('defaultPaths', () => {
  it('follows XDG, ignoring relative values', () => {
    expect(defaultPaths({ XDG_STATE_HOME: '/s', XDG_CONFIG_HOME: '/c', XDG_RUNTIME_DIR: '/run/user/7' }, '/home/u', 7)).toEqual({
      stateDir: '/s/gpushare',
      configDir: '/c/gpushare',
      socket: '/run/user/7/gpushare/gpushare.sock',
    });
    expect(defaultPaths({ XDG_STATE_HOME: 'rel' }, '/home/u', 7)).toEqual({
      stateDir: '/home/u/.local/state/gpushare',
      configDir: '/home/u/.config/gpushare',
      socket: '/tmp/gpushare-7/gpushare.sock',
    });
  });

  it('gives root, a process without HOME, and --system the system paths; a set XDG variable still wins', () => {
    const system = { configDir: '/etc/gpushare', stateDir: '/var/lib/gpushare', socket: '/run/gpushare/gpushare.sock' };
    expect(defaultPaths({}, '/root', 0)).toEqual(system);
    expect(defaultPaths({}, undefined, 7)).toEqual(system);
    expect(defaultPaths({}, '', 7)).toEqual(system);
    expect(defaultPaths({ XDG_STATE_HOME: '/s', XDG_RUNTIME_DIR: '/run/user/0' }, '/root', 0)).toEqual({
      configDir: '/etc/gpushare',
      stateDir: '/s/gpushare',
      socket: '/run/user/0/gpushare/gpushare.sock',
    });
    expect(defaultPaths({ XDG_STATE_HOME: '/s', XDG_CONFIG_HOME: '/c', XDG_RUNTIME_DIR: '/r' }, '/home/u', 7, true)).toEqual(system);
    expect(SYSTEM_PATHS).toEqual(system);
  });

  it('reads HOME from the environment it is given', () => {
    expect(defaultPaths({ HOME: '/home/h' }, undefined, 7).stateDir).toBe('/home/h/.local/state/gpushare');
    expect(defaultPaths({}, undefined, 7).stateDir).toBe('/var/lib/gpushare');
  });
});

describe('parseListen', () => {
  it.each([
    ['/run/g.sock', { kind: 'unix', path: '/run/g.sock' }],
    ['unix:/x/y', { kind: 'unix', path: '/x/y' }],
    ['127.0.0.1:7070', { kind: 'tcp', host: '127.0.0.1', port: 7070 }],
    ['[::1]:80', { kind: 'tcp', host: '::1', port: 80 }],
    [':9000', { kind: 'tcp', host: '127.0.0.1', port: 9000 }],
    ['127.0.0.1:0', { kind: 'tcp', host: '127.0.0.1', port: 0 }],
  ])('%s', (text, expected) => {
    expect(parseListen(text)).toEqual(expected);
  });

  it.each(['localhost', 'host:-1', 'host:70000', 'host:abc'])('refuses %s', (text) => {
    expect(() => parseListen(text)).toThrow(/neither a Unix socket path/);
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpushare-config-'));
  const file = (name: string, body: string): string => {
    const p = join(dir, name);
    writeFileSync(p, body);
    return p;
  };

  it('uses defaults when no file exists, and flags over the file', () => {
    const env = { XDG_CONFIG_HOME: join(dir, 'none'), XDG_STATE_HOME: '/st', XDG_RUNTIME_DIR: '/rt' };
    const c = loadConfig({}, env);
    expect(c).toMatchObject({ stateDir: '/st/gpushare', listen: [{ kind: 'unix', path: '/rt/gpushare/gpushare.sock' }], policy: 'binpack', killGraceMs: 10_000, configFile: null });
    const f = file('a.json', JSON.stringify({ stateDir: '/from-file', killGraceSeconds: 2, policy: 'spread' }));
    expect(loadConfig({ config: f, policy: 'bestfit' }, env)).toMatchObject({ stateDir: '/from-file', killGraceMs: 2000, policy: 'bestfit', configFile: f });
  });

  it('turns slice swap on unless --no-swap or "swap": false says otherwise; the flag over the file', () => {
    const env = { XDG_CONFIG_HOME: join(dir, 'none'), XDG_STATE_HOME: '/st', XDG_RUNTIME_DIR: '/rt' };
    expect(loadConfig({}, env).swap).toBe(true);
    expect(loadConfig({ swap: false }, env).swap).toBe(false);
    const off = file('swap-off.json', JSON.stringify({ swap: false }));
    expect(loadConfig({ config: off }, env).swap).toBe(false);
    expect(loadConfig({ config: off, swap: true }, env).swap).toBe(true);
    expect(loadConfig({ config: file('swap-on.json', JSON.stringify({ swap: true })), swap: false }, env).swap).toBe(false);
    // overcommit needs swap: refused with swap turned off, accepted by default
    expect(() => loadConfig({ config: off, overcommit: '2' }, env)).toThrow(/slice swap is off/);
    expect(loadConfig({ overcommit: '2' }, env).overcommit).not.toBeNull();
  });

  it('takes the system paths with --system whoever runs it, the XDG variables ignored; --state-dir and --listen still win', () => {
    const env = { HOME: '/home/u', XDG_CONFIG_HOME: join(dir, 'none'), XDG_STATE_HOME: '/st', XDG_RUNTIME_DIR: '/rt' };
    expect(loadConfig({ system: true }, env)).toMatchObject({ stateDir: '/var/lib/gpushare', listen: [{ kind: 'unix', path: '/run/gpushare/gpushare.sock' }] });
    expect(loadConfig({ system: true, stateDir: '/s2', listen: ['/x.sock'] }, env)).toMatchObject({ stateDir: '/s2', listen: [{ kind: 'unix', path: '/x.sock' }] });
  });

  it('says which directory it cannot create and what to do, where the user may not (a non-root --system)', () => {
    // /sys refuses every new directory, root included (EPERM): the case a non-root user meets in /var/lib.
    expect(() => ensurePrivateDir('/sys/gpushare-test/state')).toThrow(/^cannot create \/sys\/gpushare-test\/state: .*; create it for this user \(uid \d+\), e\.g\. systemd's StateDirectory=/);
  });

  it('says what is wrong with a bad file', () => {
    expect(() => loadConfig({ config: file('b.json', '{"stateDir": 3, "extra": true}') })).toThrow(/stateDir: .*expected string.*Unrecognized key/s);
    expect(() => loadConfig({ config: file('c.json', '{nope') })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ config: join(dir, 'missing.json') })).toThrow(/does not exist/);
  });

  it('reads the alerts section as written, refusing a bad rule or webhook with where it is', () => {
    const alerts = { rules: [{ name: 'gpu-memory-info', enabled: false }, { name: 'hot', figure: 'gpu_temperature_celsius', threshold: 70, for: '10m', severity: 'info' }], webhooks: [{ url: 'https://hooks.example/alert', maxAttempts: 3 }], keepResolved: 50 };
    expect(loadConfig({ config: file('al.json', JSON.stringify({ alerts })) }).alerts).toEqual({ ...alerts, rules: [alerts.rules[0], { ...alerts.rules[1], for: 600 }] });
    expect(loadConfig({ config: file('al0.json', '{}') }).alerts).toEqual({});
    expect(() => loadConfig({ config: file('al2.json', JSON.stringify({ alerts: { rules: [{ name: 'x', figure: 'gpu_mood' }] } })) })).toThrow(/alerts\.rules\.0\.figure: Invalid option/);
    expect(() => loadConfig({ config: file('al3.json', JSON.stringify({ alerts: { webhooks: [{ url: 'file:///etc/passwd' }] } })) })).toThrow(/alerts\.webhooks\.0\.url: must be an http/);
  });

  it('takes mps from the file, the flag over it, auto by default, and refuses other values', () => {
    const env = { XDG_CONFIG_HOME: join(dir, 'none') };
    expect(loadConfig({}, env).mps).toBe('auto');
    const f = file('m.json', JSON.stringify({ mps: 'on' }));
    expect(loadConfig({ config: f }, env).mps).toBe('on');
    expect(loadConfig({ config: f, mps: 'off' }, env).mps).toBe('off');
    expect(() => loadConfig({ mps: 'yes' }, env)).toThrow(/mps: "yes" is not one of auto, on, off/);
    expect(() => loadConfig({ config: file('m2.json', '{"mps": "always"}') }, env)).toThrow(/mps: /);
  });

  it('takes the monitor period and the /metrics name sets from the file (1 s and none by default), refusing bad values', () => {
    const env = { XDG_CONFIG_HOME: join(dir, 'none') };
    expect(loadConfig({}, env)).toMatchObject({ sampleMs: 1000, metricsCompat: [] });
    const f = file('mon.json', JSON.stringify({ monitor: { sampleSeconds: 2.5 }, metrics: { compat: ['hami', 'dcgm'] } }));
    expect(loadConfig({ config: f }, env)).toMatchObject({ sampleMs: 2500, metricsCompat: ['hami', 'dcgm'] });
    expect(() => loadConfig({ config: file('mon2.json', '{"monitor": {"sampleSeconds": 0}}') }, env)).toThrow(/monitor\.sampleSeconds: /);
    expect(() => loadConfig({ config: file('mon3.json', '{"metrics": {"compat": ["nvidia"]}}') }, env)).toThrow(/metrics\.compat\.0: /);
  });

  it("takes history's retention per resolution (1h, 7d, 90d by default), refusing a bad one with a clear reason", () => {
    const env = { XDG_CONFIG_HOME: join(dir, 'none') };
    expect(loadConfig({}, env).historyRetention).toEqual({ rawMs: 3_600_000, minuteMs: 7 * 86_400_000, hourMs: 90 * 86_400_000 });
    const f = file('ret.json', JSON.stringify({ monitor: { history: { retention: { raw: '2h', hour: '1w' } } } }));
    expect(loadConfig({ config: f }, env).historyRetention).toEqual({ rawMs: 7_200_000, minuteMs: 7 * 86_400_000, hourMs: 7 * 86_400_000 });
    const refused = (name: string, retention: unknown): (() => unknown) => () => loadConfig({ config: file(name, JSON.stringify({ monitor: { history: { retention } } })) }, env);
    expect(refused('r1.json', { raw: 'an hour' })).toThrow(/r1\.json: monitor\.history\.retention\.raw: "an hour" is not a duration/);
    expect(refused('r2.json', { raw: '30s' })).toThrow(/monitor\.history\.retention\.raw: 30s is out of range \(5m to 24h\)/);
    expect(refused('r3.json', { minute: '400d' })).toThrow(/monitor\.history\.retention\.minute: 400d is out of range \(1h to 90d\)/);
    expect(refused('r4.json', { minute: '30d', hour: '14d' })).toThrow(/minute rollups \(30d\) kept longer than hour rollups \(14d\)/);
    expect(refused('r5.json', { raw: '1h', minute: '1h', hour: '1d', week: '2w' })).toThrow(/monitor\.history\.retention: Unrecognized key: "week"/);
  });

  it('reads tenants and their quotas, refusing a bad one with where it is', () => {
    const ok = loadConfig({ config: file('t1.json', JSON.stringify({ tenants: [{ name: 'a', quota: { gpus: 2, memory: '80Gi', compute: '150%' } }, { name: 'b' }] })) });
    expect(ok.tenants).toEqual([
      { name: 'a', quota: { gpus: 2, memoryBytes: 80 * 2 ** 30, computeMilli: 1500 } },
      { name: 'b', quota: { gpus: null, memoryBytes: null, computeMilli: null } },
    ]);
    expect(() => loadConfig({ config: file('t2.json', JSON.stringify({ tenants: [{ name: 'a' }, { name: 'x', quota: { memory: '4096m' } }] })) })).toThrow(
      /config file .*t2\.json: tenants\.1: quota\.memory: unit "m" in "4096m" is ambiguous/,
    );
    expect(() => loadConfig({ config: file('t3.json', JSON.stringify({ tenants: [{ name: 'a' }, { name: 'a' }] })) })).toThrow(/tenants\.1: tenant "a" is listed twice/);
    expect(() => loadConfig({ config: file('t4.json', JSON.stringify({ tenants: [{ name: 'no spaces' }] })) })).toThrow(/tenants\.0: name: "no spaces" is not a tenant name/);
  });

  it('reads the sandbox settings and tenants\' users, the flags over the file, with defaults that work as root out of the box', () => {
    const env = { XDG_CONFIG_HOME: join(dir, 'none') };
    expect(loadConfig({}, env).sandbox).toEqual({ users: 'auto', uidBase: 1_900_000_000, uidCount: 65_536, noTenant: 'allocated', passEnv: [], taskDir: '/var/lib/gpushare/tasks', cgroup: 'auto' });
    const f = file('s1.json', JSON.stringify({ sandbox: { users: 'on', uidBase: 500_000, passEnv: ['CUDA_HOME'], noTenant: { user: 'nobody' }, cgroup: '/sys/fs/cgroup/gs' }, tenants: [{ name: 'a', runAs: { user: 'alice' } }, { name: 'b', runAs: { uid: 5000, gid: 5000 } }] }));
    const c = loadConfig({ config: f }, env);
    expect(c.sandbox).toMatchObject({ users: 'on', uidBase: 500_000, passEnv: ['CUDA_HOME'], noTenant: { user: 'nobody' }, cgroup: '/sys/fs/cgroup/gs' });
    expect(c.tenants.map((t) => t.runAs)).toEqual([{ user: 'alice' }, { uid: 5000, gid: 5000 }]);
    expect(loadConfig({ config: f, sandbox: 'off', passEnv: ['X'] }, env).sandbox).toMatchObject({ users: 'off', passEnv: ['X'], uidBase: 500_000 });
    expect(() => loadConfig({ sandbox: 'maybe' }, env)).toThrow(/sandbox: "maybe" is not one of auto, on, off/);
    expect(() => loadConfig({ config: file('s2.json', JSON.stringify({ tenants: [{ name: 'a', runAs: { uid: 0, gid: 1 } }] })) }, env)).toThrow(/tenants\.0\.runAs/);
    expect(() => loadConfig({ config: file('s3.json', JSON.stringify({ sandbox: { cgroup: 'relative/dir' } })) }, env)).toThrow(/sandbox\.cgroup: must be auto, off or an absolute path/);
    expect(() => loadConfig({ config: file('s4.json', JSON.stringify({ sandbox: { passEnv: ['A-B'] } })) }, env)).toThrow(/sandbox\.passEnv\.0: must be a variable name/);
  });

  it('refuses TCP without tokens', () => {
    expect(() => loadConfig({ config: file('d.json', '{}'), listen: ['127.0.0.1:7070'] })).toThrow(/needs bearer tokens/);
  });

  it('refuses plain TCP on an address other than loopback unless told so; TLS files come in pairs', () => {
    const tokens = JSON.stringify({ tokens: [{ sha256: 'a'.repeat(64), tenant: 't' }] });
    const withTokens = file('tok.json', tokens);
    for (const host of ['127.0.0.1:7070', '127.9.9.9:1', '[::1]:7070', 'localhost:7070', ':7070']) {
      expect(loadConfig({ config: withTokens, listen: [host] }).tls).toBeNull();
    }
    for (const host of ['0.0.0.0:7070', '192.168.1.2:7070', '[::]:7070']) {
      expect(() => loadConfig({ config: withTokens, listen: [host] })).toThrow(/is not a loopback address, and plain TCP would carry bearer tokens and task data in clear: give a certificate .* or allow plain TCP knowingly \("allowInsecureTcp": true, or --insecure\)/);
      expect(loadConfig({ config: withTokens, listen: [host], insecure: true }).allowInsecureTcp).toBe(true);
      expect(loadConfig({ config: file('insecure.json', JSON.stringify({ ...JSON.parse(tokens), allowInsecureTcp: true })), listen: [host] }).allowInsecureTcp).toBe(true);
      expect(loadConfig({ config: withTokens, listen: [host], tlsCert: '/c.pem', tlsKey: '/k.pem' }).tls).toEqual({ cert: '/c.pem', key: '/k.pem', clientCa: null });
    }
    const inFile = file('tls.json', JSON.stringify({ ...JSON.parse(tokens), tls: { cert: '/c.pem', key: '/k.pem', clientCa: '/ca.pem' } }));
    expect(loadConfig({ config: inFile, listen: ['0.0.0.0:1'], tlsKey: '/other.pem' }).tls).toEqual({ cert: '/c.pem', key: '/other.pem', clientCa: '/ca.pem' });
    expect(() => loadConfig({ config: withTokens, tlsCert: '/c.pem' })).toThrow(/tls: a certificate without a key; give both/);
    expect(() => loadConfig({ config: withTokens, tlsKey: '/k.pem' })).toThrow(/tls: a key without a certificate/);
    expect(() => loadConfig({ config: withTokens, tlsClientCa: '/ca.pem' })).toThrow(/tls: a client CA .* needs a certificate and key/);
  });
});

describe('preemption settings', () => {
  it('defaults to suspending (never killing), takes the file and lets the flag win, refuses unknown policies', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gs-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ preemption: 'off', checkpointLockTimeoutSeconds: 5 }));
    const none = join(dir, 'absent.json');
    writeFileSync(none, '{}');
    expect(loadConfig({ config: none, stateDir: dir })).toMatchObject({ preemption: 'suspend', lockTimeoutMs: 30_000 });
    expect(loadConfig({ config: file, stateDir: dir })).toMatchObject({ preemption: 'off', lockTimeoutMs: 5000 });
    expect(loadConfig({ config: file, stateDir: dir, preemption: 'suspend-then-kill' }).preemption).toBe('suspend-then-kill');
    expect(() => loadConfig({ config: none, stateDir: dir, preemption: 'kill' })).toThrow('preemption: "kill" is not one of suspend, suspend-then-kill, off');
    writeFileSync(file, JSON.stringify({ preemption: 'always' }));
    expect(() => loadConfig({ config: file, stateDir: dir })).toThrow(/preemption/);
  });
});
