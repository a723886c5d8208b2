import { ErrorCodes, GsError } from '../../domain/index.js';
import type { Db } from './db.js';

/** A tenant's limits; null: no limit on that resource. */
export interface Quota {
  readonly gpus: number | null;
  readonly memoryBytes: number | null;
  /** Compute, milli-GPU summed over GPUs (2500 = two and a half GPUs' worth). */
  readonly computeMilli: number | null;
}

export interface TenantRecord {
  readonly name: string;
  readonly quota: Quota;
  readonly createdAt: number;
  readonly updatedAt: number;
}

interface TenantRow {
  name: string;
  quota_gpus: number | null;
  quota_memory_bytes: number | null;
  quota_compute_milli: number | null;
  created_at: number;
  updated_at: number | null;
}

export const NO_QUOTA: Quota = { gpus: null, memoryBytes: null, computeMilli: null };

/** Tenants and their quotas. A tenant without a row has no quota. */
export class TenantStore {
  private readonly byName;
  private readonly all;
  private readonly insert;
  private readonly change;
  private readonly remove;

  constructor(db: Db) {
    this.byName = db.prepare('SELECT * FROM tenants WHERE name = ?');
    this.all = db.prepare('SELECT * FROM tenants ORDER BY name');
    this.insert = db.prepare('INSERT INTO tenants (name, quota_gpus, quota_memory_bytes, quota_compute_milli, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.change = db.prepare('UPDATE tenants SET quota_gpus = ?, quota_memory_bytes = ?, quota_compute_milli = ?, updated_at = ? WHERE name = ?');
    this.remove = db.prepare('DELETE FROM tenants WHERE name = ?');
  }

  find(name: string): TenantRecord | null {
    const row = this.byName.get(name) as TenantRow | undefined;
    return row ? fromRow(row) : null;
  }

  get(name: string): TenantRecord {
    const t = this.find(name);
    if (!t) throw new GsError(ErrorCodes.notFound, `no tenant "${name}"`);
    return t;
  }

  list(): TenantRecord[] {
    return (this.all.all() as TenantRow[]).map(fromRow);
  }

  create(name: string, quota: Quota, at: number): TenantRecord {
    if (this.find(name)) throw new GsError(ErrorCodes.conflict, `tenant "${name}" already exists; change its quota with PATCH /v1/tenants/${name} (gpushare tenant set-quota)`);
    this.insert.run(name, quota.gpus, quota.memoryBytes, quota.computeMilli, at, at);
    return this.get(name);
  }

  setQuota(name: string, quota: Quota, at: number): TenantRecord {
    this.get(name);
    this.change.run(quota.gpus, quota.memoryBytes, quota.computeMilli, at, name);
    return this.get(name);
  }

  delete(name: string): void {
    this.get(name);
    this.remove.run(name);
  }
}

function fromRow(r: TenantRow): TenantRecord {
  return {
    name: r.name,
    quota: { gpus: r.quota_gpus, memoryBytes: r.quota_memory_bytes, computeMilli: r.quota_compute_milli },
    createdAt: r.created_at,
    updatedAt: r.updated_at ?? r.created_at,
  };
}
