/**
 * Tenant quotas. GPU count and compute are known before any node is looked at, so they are an
 * admission check; memory can depend on the GPU (a `50%` request is bigger on a bigger GPU), so
 * it is also checked per GPU.
 */
import type { AdmissionPlugin, FilterPlugin } from '../framework.js';
import type { TenantQuota, TenantUsage } from '../types.js';

const NONE: TenantUsage = { gpus: 0, memoryBytes: 0, computeMilli: 0 };

function quotaOf(ctx: Parameters<AdmissionPlugin['admit']>[0]): { tenant: string; quota: TenantQuota; used: TenantUsage } | null {
  const tenant = ctx.request.tenant;
  if (tenant === null) return null;
  const quota = ctx.snapshot.quotas.get(tenant);
  if (!quota) return null;
  return { tenant, quota, used: ctx.snapshot.usage.get(tenant) ?? NONE };
}

export const quotaAdmission: AdmissionPlugin = {
  name: 'quota',
  admit(ctx) {
    const q = quotaOf(ctx);
    if (!q || ctx.demand.count === 0) return null;
    const { tenant, quota, used } = q;
    const count = ctx.demand.count;
    if (quota.gpus !== undefined && used.gpus + count > quota.gpus) {
      return { kind: 'quotaExceeded', tenant, resource: 'gpus', requested: count, used: used.gpus, limit: quota.gpus };
    }
    if (quota.computeMilli !== undefined) {
      // Compute per GPU is a share of a GPU's 1000 milli whatever the model, so it is known here.
      const s = ctx.request.slice;
      const whole = s.isolation === 'exclusive' || (s.memory === null && s.compute === null);
      const per = whole ? 1000 : s.compute === null ? 0 : Math.round(s.compute * 1000);
      const requested = per * count;
      if (used.computeMilli + requested > quota.computeMilli) {
        return { kind: 'quotaExceeded', tenant, resource: 'computeMilli', requested, used: used.computeMilli, limit: quota.computeMilli };
      }
    }
    return null;
  },
};

export const quotaMemory: FilterPlugin = {
  name: 'quotaMemory',
  prepare(ctx) {
    const q = quotaOf(ctx);
    if (!q || q.quota.memoryBytes === undefined || ctx.demand.count === 0) return null;
    const remaining = q.quota.memoryBytes - q.used.memoryBytes;
    const count = ctx.demand.count;
    return {
      gpu(node, i) {
        const g = node.spec.gpus[i];
        const bytes = g ? ctx.demand.memoryOn(g) : 0;
        // Each of the request's GPUs takes `bytes`; the set must fit what the tenant has left.
        if (bytes * count <= remaining) return null;
        return { kind: 'quotaMemory', gpu: i, requestedBytes: bytes * count, remainingBytes: remaining };
      },
    };
  },
};
