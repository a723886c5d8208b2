import type { Db } from './db.js';

/** A bearer token made through the API (the secret itself is never kept). */
export interface ApiTokenRecord {
  readonly id: string;
  readonly sha256: string;
  readonly tenant: string;
  readonly role: 'user' | 'admin';
  readonly maxPriority: number | null;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly expiresAt: number | null;
}

export interface Revocation {
  readonly sha256: string;
  readonly revokedAt: number;
  readonly revokedBy: string;
}

interface TokenRow {
  id: string;
  sha256: string;
  tenant: string;
  role: string;
  max_priority: number | null;
  created_at: number;
  created_by: string;
  expires_at: number | null;
}

/**
 * API-made tokens and the revocations of any token (config or API), by sha256. Read at start
 * and after each change only (TokenAuthority keeps them in memory): statements are not kept.
 */
export class TokenStore {
  constructor(private readonly db: Db) {}

  list(): ApiTokenRecord[] {
    const rows = this.db.prepare('SELECT * FROM api_tokens ORDER BY created_at, id').all() as TokenRow[];
    return rows.map((r) => ({
      id: r.id,
      sha256: r.sha256,
      tenant: r.tenant,
      role: r.role === 'admin' ? 'admin' : 'user',
      maxPriority: r.max_priority,
      createdAt: r.created_at,
      createdBy: r.created_by,
      expiresAt: r.expires_at,
    }));
  }

  create(t: ApiTokenRecord): void {
    this.db
      .prepare('INSERT INTO api_tokens (id, sha256, tenant, role, max_priority, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(t.id, t.sha256, t.tenant, t.role, t.maxPriority, t.createdAt, t.createdBy, t.expiresAt);
  }

  revoked(): Revocation[] {
    const rows = this.db.prepare('SELECT * FROM token_revocations').all() as { sha256: string; revoked_at: number; revoked_by: string }[];
    return rows.map((r) => ({ sha256: r.sha256, revokedAt: r.revoked_at, revokedBy: r.revoked_by }));
  }

  addRevocation(sha256: string, at: number, by: string): void {
    this.db.prepare('INSERT INTO token_revocations (sha256, revoked_at, revoked_by) VALUES (?, ?, ?)').run(sha256, at, by);
  }
}
