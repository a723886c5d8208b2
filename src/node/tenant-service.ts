/**
 * Tenants, their quotas and the audit log, as one service: the daemon's queue reads quotas from
 * it, the API changes them through it, and every change (and every refusal the API reports) is
 * an audit row written in the same transaction as the change. It knows nothing of the queue:
 * what tenants use now comes from `usage`, and a change that may let queued tasks start is the
 * caller's to act on (Daemon.setQuota pumps the queue). Who may do what is the API's call
 * (api/authorize.ts): methods here take who acts only to record it.
 */
import { ErrorCodes, GsError } from '../domain/index.js';
import type { Principal } from '../contract/principal.js';
import type { TenantQuota, TenantUsage } from '../scheduler/index.js';
import type { AuditEntry, AuditRecord, TaskStore } from './store/tasks.js';
import type { Quota } from './store/tenants.js';
import { checkTenantName, parseQuota, quotaMap, tenantViews, type QuotaInput, type TenantView } from './tenants.js';

/** Who made a change, as the audit log records it. */
export type Actor = Pick<Principal, 'actor' | 'role'>;

export class TenantService {
  constructor(
    private readonly store: TaskStore,
    private readonly now: () => number,
    /** What each tenant's tasks hold now, as the scheduler counts it. */
    private readonly usage: () => ReadonlyMap<string, TenantUsage>,
  ) {}

  /** Every tenant's quota in the scheduler's form. */
  quotas(): Map<string, TenantQuota> {
    return quotaMap(this.store.tenants.list());
  }

  /** `tenant`'s quota alone in the scheduler's form; empty when it has none. */
  quotaOf(tenant: string | null): { quotas: Map<string, TenantQuota>; quota: Quota | null } {
    const record = tenant === null ? undefined : this.store.tenants.find(tenant);
    return record ? { quotas: quotaMap([record]), quota: record.quota } : { quotas: new Map(), quota: null };
  }

  /** Writes one audit row (inside the caller's transaction, if any). */
  audit(actor: Actor, entry: Omit<AuditEntry, 'actor' | 'role'>): void {
    this.store.audit(this.now(), { ...entry, actor: actor.actor, role: actor.role });
  }

  auditLog(since: number, limit: number): AuditRecord[] {
    return this.store.auditLog(since, limit);
  }

  list(): TenantView[] {
    return tenantViews(this.store, this.usage());
  }

  get(name: string): TenantView {
    const view = this.list().find((v) => v.name === name);
    if (!view) throw new GsError(ErrorCodes.notFound, `no tenant "${name}"`);
    return view;
  }

  create(name: string, quota: QuotaInput, by: Actor): TenantView {
    checkTenantName(name);
    const parsed = parseQuota(quota);
    const at = this.now();
    this.store.transaction(() => {
      this.store.tenants.create(name, parsed, at);
      this.store.audit(at, { actor: by.actor, role: by.role, action: 'tenant.create', target: name, detail: { quota: parsed } });
    });
    return this.get(name);
  }

  /** Changes a tenant's quota; lowering it below what runs now stops nothing, it holds back what is queued. */
  setQuota(name: string, quota: QuotaInput, by: Actor): void {
    const at = this.now();
    this.store.transaction(() => {
      const before = this.store.tenants.get(name).quota;
      const after = parseQuota(quota, before);
      this.store.tenants.setQuota(name, after, at);
      this.store.audit(at, { actor: by.actor, role: by.role, action: 'tenant.set-quota', target: name, detail: { before, after } });
    });
  }

  delete(name: string, by: Actor): void {
    const at = this.now();
    this.store.transaction(() => {
      const before = this.store.tenants.get(name);
      const live = this.store.list().filter((t) => t.tenant === name).length;
      // Its queued tasks would otherwise start with no quota at all, which nobody asked for.
      if (live > 0) throw new GsError(ErrorCodes.conflict, `tenant "${name}" has ${live} queued or running task(s); kill them first, or change its quota instead`);
      this.store.tenants.delete(name);
      this.store.audit(at, { actor: by.actor, role: by.role, action: 'tenant.delete', target: name, detail: { quota: before.quota } });
    });
  }

  /**
   * Makes a tenant's quota what the config file says (created if missing), audited as the
   * config's doing; an unchanged one is left alone, so a restart adds no audit noise.
   */
  declare(name: string, quota: Quota, actor: string): void {
    const at = this.now();
    const config = { actor, role: 'admin' as const };
    this.store.transaction(() => {
      const existing = this.store.tenants.find(name);
      if (!existing) {
        this.store.tenants.create(name, quota, at);
        this.store.audit(at, { ...config, action: 'tenant.create', target: name, detail: { quota } });
      } else if (JSON.stringify(existing.quota) !== JSON.stringify(quota)) {
        this.store.tenants.setQuota(name, quota, at);
        this.store.audit(at, { ...config, action: 'tenant.set-quota', target: name, detail: { before: existing.quota, after: quota } });
      }
    });
  }
}
