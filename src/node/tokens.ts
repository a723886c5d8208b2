/**
 * Bearer tokens: those of the config file and those made through the API, their expiry and
 * revocation, and the one check every TCP request goes through. The secret is never kept:
 * only its sha256, compared in constant time (crypto.timingSafeEqual) against every known
 * token, so how long a refusal takes says nothing about which hashes exist. A token's public
 * name is its id, the first 12 hex digits of that sha256. Changes are audited in the same
 * transaction as the change. Who may change tokens is the API's call (api/authorize.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { PRIORITY_LEVELS } from '../domain/index.js';
import { ErrorCodes, GsError } from '../domain/index.js';
import type { Principal } from '../contract/principal.js';
import { shown } from '../contract/shown.js';
import type { TokenEntry } from './config.js';
import type { Db } from './store/db.js';
import type { TaskStore } from './store/tasks.js';
import { TokenStore } from './store/tokens.js';
import type { Actor } from './tenant-service.js';
import { checkTenantName } from './tenants.js';

/** A token as lists show it (never the secret, nor the whole hash). */
export interface TokenView {
  readonly id: string;
  readonly tenant: string;
  readonly role: 'user' | 'admin';
  /** The highest priority it may submit at; null: no limit (admins) . */
  readonly maxPriority: number | null;
  readonly source: 'config' | 'api';
  readonly createdAt: number | null;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
  readonly state: 'active' | 'expired' | 'revoked';
}

export type AuthResult = { readonly ok: true; readonly principal: Principal } | { readonly ok: false; readonly reason: 'unknown' | 'expired' | 'revoked' };

interface Known {
  readonly digest: Buffer;
  readonly view: Omit<TokenView, 'state' | 'revokedAt'>;
}

/** What authenticates a bearer token: the API's only view of tokens. */
export interface TokenChecker {
  authenticate(secret: string): AuthResult;
}

export interface NewToken {
  readonly tenant: string;
  readonly role: 'user' | 'admin';
  /** Milliseconds from now; null: it does not expire. */
  readonly lifetimeMs: number | null;
  readonly maxPriority: number | null;
}

export class TokenAuthority implements TokenChecker {
  private readonly store: TokenStore | null;
  private known: Known[] = [];
  private revoked = new Map<string, { at: number; by: string }>();

  /** `db`/`tasks` null: the config's tokens only, nothing to revoke or make (tests, a read-only start). */
  constructor(
    private config: readonly TokenEntry[],
    private readonly db: { readonly db: Db; readonly tasks: TaskStore } | null,
    private readonly now: () => number = Date.now,
  ) {
    this.store = db === null ? null : new TokenStore(db.db);
    this.reload();
  }

  /** The config file's tokens, replaced (SIGHUP): from now on only these and the API's are known. */
  replaceConfigTokens(config: readonly TokenEntry[]): void {
    this.config = config;
    this.reload();
  }

  /** The caller a bearer token names; every known hash is compared, with no early exit. */
  authenticate(secret: string): AuthResult {
    const digest = createHash('sha256').update(secret).digest();
    let found: Known | null = null;
    for (const k of this.known) if (timingSafeEqual(k.digest, digest) && found === null) found = k;
    if (found === null) return { ok: false, reason: 'unknown' };
    if (this.revoked.has(found.digest.toString('hex'))) return { ok: false, reason: 'revoked' };
    if (found.view.expiresAt !== null && found.view.expiresAt <= this.now()) return { ok: false, reason: 'expired' };
    const v = found.view;
    // The token by its id (what `gpushare token ls` shows) beside its tenant: two tokens of one tenant are told apart in the audit log.
    return { ok: true, principal: { actor: `tenant:${v.tenant}/token:${v.id}`, role: v.role, tenant: v.tenant, ...(v.maxPriority !== null ? { maxPriority: v.maxPriority } : {}) } };
  }

  list(): TokenView[] {
    const at = this.now();
    return this.known.map((k) => {
      const r = this.revoked.get(k.digest.toString('hex'));
      const state = r ? 'revoked' : k.view.expiresAt !== null && k.view.expiresAt <= at ? 'expired' : 'active';
      return { ...k.view, revokedAt: r?.at ?? null, state };
    });
  }

  /** Makes a token; the secret is in the answer and nowhere else. */
  create(input: NewToken, by: Actor): { token: string; view: TokenView } {
    const { store, db } = this.writable();
    checkTenantName(input.tenant);
    const token = `gs_${randomBytes(24).toString('base64url')}`;
    const sha256 = createHash('sha256').update(token).digest('hex');
    const at = this.now();
    const maxPriority = input.role === 'admin' ? null : (input.maxPriority ?? PRIORITY_LEVELS.normal);
    const record = { id: sha256.slice(0, 12), sha256, tenant: input.tenant, role: input.role, maxPriority, createdAt: at, createdBy: by.actor, expiresAt: input.lifetimeMs === null ? null : at + input.lifetimeMs };
    db.db.transaction(() => {
      store.create(record);
      db.tasks.audit(at, { actor: by.actor, role: by.role, action: 'token.create', target: record.id, detail: { tenant: record.tenant, role: record.role, maxPriority, expiresAt: record.expiresAt } });
    })();
    this.reload();
    return { token, view: this.get(record.id) };
  }

  /** Revokes a token (config or API) by its id or a unique prefix of at least 6 hex digits; from the next request on it is refused. */
  revoke(idOrPrefix: string, by: Actor): TokenView {
    const { store, db } = this.writable();
    const target = this.find(idOrPrefix);
    if (target.state === 'revoked') throw new GsError(ErrorCodes.conflict, `token ${target.id} is already revoked`);
    const sha256 = this.known.find((k) => k.view.id === target.id)?.digest.toString('hex') as string;
    const at = this.now();
    db.db.transaction(() => {
      store.addRevocation(sha256, at, by.actor);
      db.tasks.audit(at, { actor: by.actor, role: by.role, action: 'token.revoke', target: target.id, detail: { tenant: target.tenant, source: target.source } });
    })();
    this.reload();
    return this.get(target.id);
  }

  private get(id: string): TokenView {
    return this.find(id);
  }

  private find(idOrPrefix: string): TokenView {
    if (!/^[0-9a-f]{6,64}$/.test(idOrPrefix)) throw new GsError(ErrorCodes.invalidArgument, `"${shown(idOrPrefix)}" is not a token id; expected 6 to 12 hex digits, as \`gpushare token list\` shows`);
    const matches = this.list().filter((t) => t.id.startsWith(idOrPrefix.slice(0, 12)));
    if (matches.length === 0) throw new GsError(ErrorCodes.notFound, `no token "${idOrPrefix}"`);
    if (matches.length > 1) throw new GsError(ErrorCodes.invalidArgument, `"${idOrPrefix}" matches more than one token; give more of its id`);
    return matches[0] as TokenView;
  }

  private writable(): { store: TokenStore; db: NonNullable<TokenAuthority['db']> } {
    if (this.store === null || this.db === null) throw new GsError(ErrorCodes.conflict, 'this daemon keeps no token records');
    return { store: this.store, db: this.db };
  }

  /** Rereads the tokens and revocations (at start and after each change: this daemon is their only writer). */
  private reload(): void {
    const normal = PRIORITY_LEVELS.normal;
    const fromConfig: Known[] = this.config.map((t) => ({
      digest: Buffer.from(t.sha256, 'hex'),
      view: { id: t.sha256.slice(0, 12), tenant: t.tenant, role: t.role, maxPriority: t.role === 'admin' ? null : (t.maxPriority ?? normal), source: 'config', createdAt: null, expiresAt: t.expiresAt ?? null },
    }));
    const fromApi: Known[] = (this.store?.list() ?? []).map((t) => ({
      digest: Buffer.from(t.sha256, 'hex'),
      view: { id: t.id, tenant: t.tenant, role: t.role, maxPriority: t.role === 'admin' ? null : (t.maxPriority ?? normal), source: 'api', createdAt: t.createdAt, expiresAt: t.expiresAt },
    }));
    this.known = [...fromConfig, ...fromApi];
    this.revoked = new Map((this.store?.revoked() ?? []).map((r) => [r.sha256, { at: r.revokedAt, by: r.revokedBy }]));
  }
}
