import { describe, expect, it } from 'vitest';
import { loadConfig, type DaemonConfig } from './config.js';
import { planReload } from './config-reload.js';

const env = { XDG_CONFIG_HOME: '/nonexistent', XDG_STATE_HOME: '/st', XDG_RUNTIME_DIR: '/rt' };
const base: DaemonConfig = loadConfig({}, env);
const with_ = (over: Partial<DaemonConfig>): DaemonConfig => ({ ...base, ...over });
const quota = { gpus: 1, memoryBytes: null, computeMilli: null };
const token = { sha256: 'ab'.repeat(32), tenant: 'a', role: 'user' as const };
const tls = { cert: '/c.pem', key: '/k.pem', clientCa: null };

describe('planReload', () => {
  it('changes nothing for the same config', () => {
    expect(planReload(base, with_({ configFile: '/other' }))).toEqual({ apply: [], ignored: [] });
  });

  it('applies tenants, tokens and the log level', () => {
    expect(planReload(base, with_({ tenants: [{ name: 'a', quota }], tokens: [token], logLevel: 'debug' }))).toEqual({ apply: ['logLevel', 'tokens', 'tenants'], ignored: [] });
  });

  it('names each key that takes a restart, and applies the rest', () => {
    const next = with_({ stateDir: '/elsewhere', listen: [{ kind: 'unix', path: '/x/s' }], backend: 'nvml', policy: 'spread', sandbox: { ...base.sandbox, users: 'off' }, logLevel: 'warn' });
    expect(planReload(base, next)).toEqual({ apply: ['logLevel'], ignored: ['stateDir', 'listen', 'backend', 'policy', 'sandbox'] });
  });

  it("swaps TLS files while TLS stays on (same paths: renewed files), never turns TLS or client certificates on or off", () => {
    expect(planReload(with_({ tls }), with_({ tls })).apply).toEqual(['tls']);
    expect(planReload(with_({ tls }), with_({ tls: { ...tls, cert: '/new.pem' } })).apply).toEqual(['tls']);
    expect(planReload(base, with_({ tls }))).toEqual({ apply: [], ignored: ['tls'] });
    expect(planReload(with_({ tls }), with_({ tls: { ...tls, clientCa: '/ca.pem' } }))).toEqual({ apply: [], ignored: ['tls'] });
  });

  it("applies history's retention", () => {
    expect(planReload(base, with_({ historyRetention: { ...base.historyRetention, rawMs: 7_200_000 } }))).toEqual({ apply: ['historyRetention'], ignored: [] });
  });

  it('applies alert rules and webhooks', () => {
    expect(planReload(base, with_({ alerts: { rules: [{ name: 'gpu-xid', enabled: false }], webhooks: [{ url: 'http://127.0.0.1:9/' }] } }))).toEqual({ apply: ['alerts'], ignored: [] });
  });

  it("ignores a tenant's new or changed runAs (users are fixed at start), applying its quota", () => {
    const running = with_({ tenants: [{ name: 'a', quota, runAs: { user: 'alice' } }] });
    const next = with_({ tenants: [{ name: 'a', quota: { ...quota, gpus: 2 }, runAs: { user: 'bob' } }, { name: 'b', quota, runAs: { uid: 5000, gid: 5000 } }] });
    expect(planReload(running, next)).toEqual({ apply: ['tenants'], ignored: ['tenants.a.runAs', 'tenants.b.runAs'] });
  });
});
