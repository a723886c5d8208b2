/** Bearer tokens: expiry, revocation, a limit on failed authentication, and what a user token may ask. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inProcessDaemon, sha } from '../../test/helpers/api.js';
import type { CreatedTokenBody, TokenBody } from '../contract/schemas.js';
import { loadConfig } from '../node/config.js';
import { TokenAuthority } from '../node/tokens.js';
import { FailedAuthLimiter, limitKey } from './auth-limit.js';

let clock = Date.UTC(2027, 0, 1);
const gs = inProcessDaemon();
const { daemon, store, db, dir } = gs;
const config = [
  { sha256: sha('alice-token'), tenant: 'alice', role: 'user' as const },
  { sha256: sha('old-token'), tenant: 'alice', role: 'user' as const, expiresAt: clock - 1 },
  { sha256: sha('soon-token'), tenant: 'alice', role: 'user' as const, expiresAt: clock + 60_000 },
  { sha256: sha('eager-token'), tenant: 'eager', role: 'user' as const, maxPriority: 900 },
  { sha256: sha('root-token'), tenant: 'ops', role: 'admin' as const },
];
const authority = new TokenAuthority(config, { db, tasks: store }, () => clock);
const tcp = await gs.api({ tokens: authority, authFailuresPerMinute: 5 });
const local = await gs.api({ tokens: null, tokenAdmin: authority });
afterAll(() => gs.close());

let address = 0;
/** Each test from its own address, so the failure limit of one does not reach another. */
const from = (): string => `10.0.0.${++address}`;
const get = (token: string, remoteAddress: string) => tcp.inject({ method: 'GET', url: '/v1/tasks', headers: { authorization: `Bearer ${token}` }, remoteAddress });
const errorOf = (r: { json: () => unknown }): { code: string; message: string } => (r.json() as { error: { code: string; message: string } }).error;

describe('token expiry and revocation, checked on every request', () => {
  it('a config token past its expiresAt is refused, saying so; one before it works until then', async () => {
    const at = from();
    expect(errorOf(await get('old-token', at))).toEqual({ code: 'GS_ERR_UNAUTHENTICATED', message: 'the bearer token has expired; ask an admin for a new one' });
    expect((await get('soon-token', at)).statusCode).toBe(200);
    clock += 60_000;
    expect((await get('soon-token', at)).statusCode).toBe(401);
    clock -= 60_000;
  });

  it('an admin makes a token that expires, lists it without its secret, revokes it; each change audited', async () => {
    const at = from();
    const made = await local.inject({ method: 'POST', url: '/v1/tokens', payload: { tenant: 'bob', expires: '1h' } });
    expect(made.statusCode, made.body).toBe(201);
    const body = made.json() as CreatedTokenBody;
    expect(body).toMatchObject({ id: sha(body.token).slice(0, 12), tenant: 'bob', role: 'user', source: 'api', maxPriority: 500, expiresAt: clock + 3_600_000, state: 'active' });
    expect((await get(body.token, at)).statusCode).toBe(200);
    const listed = (await local.inject({ method: 'GET', url: '/v1/tokens' })).json() as TokenBody[];
    expect(listed.find((t) => t.id === body.id)).toEqual({ id: body.id, tenant: 'bob', role: 'user', maxPriority: 500, source: 'api', createdAt: clock, expiresAt: clock + 3_600_000, revokedAt: null, state: 'active' });
    expect(JSON.stringify(listed)).not.toContain(body.token);
    expect(listed.find((t) => t.id === sha('old-token').slice(0, 12))?.state).toBe('expired');

    const revoked = await tcp.inject({ method: 'POST', url: `/v1/tokens/${body.id.slice(0, 8)}/revoke`, headers: { authorization: 'Bearer root-token' }, remoteAddress: at });
    expect(revoked.json()).toMatchObject({ id: body.id, state: 'revoked', revokedAt: clock });
    expect(errorOf(await get(body.token, at))).toEqual({ code: 'GS_ERR_UNAUTHENTICATED', message: 'the bearer token was revoked' });
    const again = await local.inject({ method: 'POST', url: `/v1/tokens/${body.id}/revoke` });
    expect(again.statusCode).toBe(409);
    const audit = daemon.auditLog(0, 10_000).filter((a) => a.target === body.id).map((a) => [a.action, a.result]);
    expect(audit).toEqual([['token.create', 'ok'], ['token.revoke', 'ok'], ['token.revoke', 'GS_ERR_CONFLICT']]);
  });

  it("a config file's token is revoked the same way, and stays revoked for a new authority (a restart)", async () => {
    const at = from();
    const id = sha('soon-token').slice(0, 12);
    expect((await local.inject({ method: 'POST', url: `/v1/tokens/${id}/revoke` })).statusCode).toBe(200);
    expect(errorOf(await get('soon-token', at)).message).toBe('the bearer token was revoked');
    expect(new TokenAuthority(config, { db, tasks: store }, () => clock).authenticate('soon-token')).toEqual({ ok: false, reason: 'revoked' });
  });

  it('only an admin makes, lists or revokes tokens; a refusal is audited', async () => {
    const at = from();
    const r = await tcp.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: 'Bearer alice-token' }, remoteAddress: at, payload: { tenant: 'alice', role: 'admin' } });
    expect(r.statusCode).toBe(403);
    expect(daemon.auditLog(0, 10_000).at(-1)).toMatchObject({ actor: expect.stringMatching(/^tenant:alice\/token:[0-9a-f]{12}$/), action: 'token.create', result: 'GS_ERR_FORBIDDEN' });
    expect((await tcp.inject({ method: 'GET', url: '/v1/tokens', headers: { authorization: 'Bearer alice-token' }, remoteAddress: at })).statusCode).toBe(403);
    const bad = await local.inject({ method: 'POST', url: '/v1/tokens', payload: { tenant: 'bob', expires: 'forever' } });
    expect(errorOf(bad).message).toMatch(/^expires: "forever" is not a length of time/);
  });
});

describe('failed authentication is rate limited per address', () => {
  it('after the limit, the address gets 429 with Retry-After, even with a good token; others are not affected; the block is audited once', async () => {
    const at = from();
    const audits = store.auditCount();
    for (let i = 0; i < 5; i++) expect((await get(`guess-${i}`, at)).statusCode).toBe(401);
    const blocked = await get('alice-token', at);
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(errorOf(blocked).code).toBe('GS_ERR_RATE_LIMITED');
    expect((await get('alice-token', from())).statusCode).toBe(200);
    expect(daemon.auditLog(0, 10_000).slice(audits).map((a) => [a.actor, a.action, a.result])).toEqual([[`address:${at}`, 'auth', 'GS_ERR_RATE_LIMITED']]);
  });

  it('the limiter forgets an address when its window ends', () => {
    let now = 0;
    const l = new FailedAuthLimiter({ limit: 2, windowMs: 1000, now: () => now });
    expect([l.fail('a'), l.retryAfter('a'), l.fail('a'), l.retryAfter('a')]).toEqual([false, 0, true, 1]);
    now = 999;
    expect(l.retryAfter('a')).toBe(1);
    now = 1000;
    expect(l.retryAfter('a')).toBe(0);
    expect(l.fail('a')).toBe(false);
  });
});

describe("a user token's priority is capped", () => {
  const submit = (token: string, priority: string) =>
    tcp.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${token}` }, remoteAddress: '10.1.0.1', payload: { command: ['true'], gpus: 0, cwd: '/', priority } });
  it('at normal by default: high is refused (403, audited), normal is taken', async () => {
    const r = await submit('alice-token', 'high');
    expect(r.statusCode).toBe(403);
    expect(errorOf(r).message).toMatch(/^priority 900 is more than this token may ask \(at most 500\)/);
    expect(daemon.auditLog(0, 10_000).at(-1)).toMatchObject({ actor: expect.stringMatching(/^tenant:alice\/token:[0-9a-f]{12}$/), action: 'task.submit', result: 'GS_ERR_FORBIDDEN' });
    expect((await submit('alice-token', 'normal')).statusCode).toBe(201);
  });
  it("at the token's maxPriority when it has one; an admin's is not capped", async () => {
    expect((await submit('eager-token', 'high')).statusCode).toBe(201);
    expect((await submit('eager-token', '901')).statusCode).toBe(403);
    expect((await submit('root-token', '1000')).statusCode).toBe(201);
  });
});

describe('tokens in the config file', () => {
  it('take expiresAt (ISO 8601 or epoch ms) and maxPriority', () => {
    const file = join(dir, 'c.json');
    const entry = { sha256: 'a'.repeat(64), tenant: 't' };
    const write = (tokens: unknown[]): string => {
      writeFileSync(file, JSON.stringify({ tokens }));
      return file;
    };
    expect(loadConfig({ config: write([{ ...entry, expiresAt: '2027-02-01T00:00:00Z', maxPriority: 'high' }]) }).tokens[0]).toMatchObject({ expiresAt: Date.UTC(2027, 1, 1), maxPriority: 900 });
    expect(loadConfig({ config: write([{ ...entry, expiresAt: 5 }]) }).tokens[0]).toMatchObject({ expiresAt: 5 });
    expect(() => loadConfig({ config: write([{ ...entry, expiresAt: 'next week' }]) })).toThrow(/tokens\.0\.expiresAt/);
  });
});

describe('who acted, in the audit log', () => {
  it('names the token as well as its tenant, so two tokens of one tenant are told apart', () => {
    const authority = new TokenAuthority([{ sha256: sha('laptop'), tenant: 'alice', role: 'user' }, { sha256: sha('ci-runner'), tenant: 'alice', role: 'user' }], null);
    const actors = ['laptop', 'ci-runner'].map((secret) => {
      const r = authority.authenticate(secret);
      if (!r.ok) throw new Error(r.reason);
      return r.principal.actor;
    });
    expect(actors).toEqual([`tenant:alice/token:${sha('laptop').slice(0, 12)}`, `tenant:alice/token:${sha('ci-runner').slice(0, 12)}`]);
    expect(authority.list().map((t) => t.id)).toEqual([sha('laptop').slice(0, 12), sha('ci-runner').slice(0, 12)]);
  });
});

describe('what failed authentications are counted by', () => {
  it('an IPv4 address as it is (mapped ones too), an IPv6 address by its /64', () => {
    expect(limitKey('203.0.113.7')).toBe('203.0.113.7');
    expect(limitKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(limitKey('2001:db8:0:42:1:2:3:4')).toBe('2001:db8:0:42::/64');
    expect(limitKey('2001:0DB8::42:0:0:0:9')).toBe('2001:db8:0:42::/64');
    expect(limitKey('2001:db8::9')).toBe('2001:db8:0:0::/64');
    expect(limitKey('2001:db8:0:42::1')).toBe(limitKey('2001:db8:0:42:ffff:ffff:ffff:ffff'));
    expect(limitKey('::1')).toBe('0:0:0:0::/64');
    expect(limitKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(limitKey('not:an::address::')).toBe('not:an::address::');
    expect(limitKey('unknown')).toBe('unknown');
  });
});
