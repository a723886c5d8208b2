import type { Db } from './db.js';

/** The uid allocated to each tenant (sandbox.ts); '' is the key for tasks of no tenant. */
export class TenantUidStore {
  private readonly byTenant;
  private readonly all;
  private readonly insert;

  constructor(private readonly db: Db) {
    this.byTenant = db.prepare('SELECT uid FROM tenant_uids WHERE tenant = ?').pluck();
    this.all = db.prepare('SELECT uid FROM tenant_uids').pluck();
    this.insert = db.prepare('INSERT INTO tenant_uids (tenant, uid, allocated_at) VALUES (?, ?, ?)');
  }

  find(tenant: string): number | null {
    return (this.byTenant.get(tenant) as number | undefined) ?? null;
  }

  /** The tenant's uid, allocating one with `pick` (from the uids taken so far) the first time. */
  getOrAllocate(tenant: string, at: number, pick: (taken: readonly number[]) => number): number {
    return this.db.transaction(() => {
      const found = this.find(tenant);
      if (found !== null) return found;
      const uid = pick(this.all.all() as number[]);
      this.insert.run(tenant, uid, at);
      return uid;
    })();
  }
}
