import type BetterSqlite3 from 'better-sqlite3';
import type { Db } from './db.js';

/** How long a submission's Idempotency-Key is remembered: a retry later than this makes a new task. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;

export interface IdempotencyRecord {
  readonly bodySha256: string;
  readonly taskId: string;
  readonly createdAt: number;
}

/** Idempotency keys per caller (actor), each with the body it came with and the task it made. */
export class IdempotencyStore {
  constructor(private readonly db: Db) {}

  /** Prepared once, on first use (most daemons never see a key). */
  private statements?: { byKey: Statement; insert: Statement; prune: Statement };

  private sql(): NonNullable<IdempotencyStore['statements']> {
    this.statements ??= {
      byKey: this.db.prepare('SELECT body_sha256, task_id, created_at FROM idempotency_keys WHERE actor = ? AND key = ? AND created_at > ?'),
      // OR REPLACE: a row past the window is replaced by the key's new use.
      insert: this.db.prepare('INSERT OR REPLACE INTO idempotency_keys (actor, key, body_sha256, task_id, created_at) VALUES (?, ?, ?, ?, ?)'),
      prune: this.db.prepare('DELETE FROM idempotency_keys WHERE created_at <= ?'),
    };
    return this.statements;
  }

  /** The key's record if it was used within the window before `now`. */
  find(actor: string, key: string, now: number): IdempotencyRecord | null {
    const row = this.sql().byKey.get(actor, key, now - IDEMPOTENCY_WINDOW_MS) as { body_sha256: string; task_id: string; created_at: number } | undefined;
    return row ? { bodySha256: row.body_sha256, taskId: row.task_id, createdAt: row.created_at } : null;
  }

  /** Records a key's first use (inside the submission's transaction), dropping keys past the window. */
  record(actor: string, key: string, bodySha256: string, taskId: string, now: number): void {
    const { prune, insert } = this.sql();
    prune.run(now - IDEMPOTENCY_WINDOW_MS);
    insert.run(actor, key, bodySha256, taskId, now);
  }
}

type Statement = BetterSqlite3.Statement<unknown[]>;
