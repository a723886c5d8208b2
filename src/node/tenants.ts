/**
 * Tenants and their quotas: how a quota is written (the CLI's units), and what a tenant uses
 * now (its running tasks, as the scheduler counts them). The scheduler's quota plugins enforce
 * the limits; this is their bookkeeping. Who may change them is the API's call (api/authorize.ts).
 */
import { describeIssues, ErrorCodes, GsError, parseBytes, type Issue } from '../domain/index.js';
import type { TenantQuota, TenantUsage } from '../scheduler/index.js';
import type { TaskStore } from './store/tasks.js';
import { NO_QUOTA, type Quota, type TenantRecord } from './store/tenants.js';

export const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A quota change as the API and CLI take it: null removes a limit, an absent field keeps it. */
export interface QuotaInput {
  readonly gpus?: number | string | null | undefined;
  /** Bytes, or a size such as `80Gi`, summed over the tenant's GPUs. */
  readonly memory?: number | string | null | undefined;
  /** Percent of one GPU summed over GPUs: `250` is two and a half GPUs' worth. */
  readonly compute?: number | string | null | undefined;
}

export interface TenantView {
  readonly name: string;
  readonly quota: Quota;
  /** What its running tasks hold now. */
  readonly usage: TenantUsage;
  readonly running: number;
  readonly queued: number;
  /** False for a tenant that only has tasks (no quota record). */
  readonly registered: boolean;
  readonly createdAt: number | null;
  readonly updatedAt: number | null;
}

const MAX_GPUS = 1_000_000;

/** `input` applied to `base`; every problem found is reported at once, nothing is half-applied. */
export function parseQuota(input: QuotaInput, base: Quota = NO_QUOTA): Quota {
  const issues: Issue[] = [];
  const gpus = field(input.gpus, base.gpus, (v) => {
    const n = typeof v === 'number' ? v : Number(v.trim());
    if (typeof v === 'string' && !/^\d+$/.test(v.trim())) return issue(issues, 'quota.gpus', 'malformed', `"${v}" is not a GPU count; expected a whole number such as 2`);
    if (!Number.isInteger(n) || n < 0 || n > MAX_GPUS) return issue(issues, 'quota.gpus', 'outOfRange', `${v} is not a GPU count; expected a whole number from 0 to ${MAX_GPUS}`);
    return n;
  });
  const memoryBytes = field(input.memory, base.memoryBytes, (v) => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < 0) return issue(issues, 'quota.memory', 'outOfRange', `${v} is not a byte count; expected a whole number of bytes, 0 or more`);
      return v;
    }
    if (/^\s*0+\s*$/.test(v)) return 0;
    if (v.trim().endsWith('%')) return issue(issues, 'quota.memory', 'malformed', `"${v}": a memory quota is a size summed over GPUs (such as 160Gi), not a percentage`);
    const r = parseBytes(v, 'quota.memory');
    if (!r.ok) return issue(issues, 'quota.memory', r.issues[0]?.code ?? 'malformed', r.issues[0]?.message ?? 'is not a size');
    return r.value;
  });
  const computeMilli = field(input.compute, base.computeMilli, (v) => {
    const text = typeof v === 'number' ? String(v) : v.trim().replace(/%$/, '');
    const n = Number(text);
    if (text === '' || !/^\d+(\.\d*)?$|^\.\d+$/.test(text) || !Number.isFinite(n) || n > MAX_GPUS * 100) {
      return issue(issues, 'quota.compute', 'malformed', `"${v}" is not a compute quota; expected percent of one GPU summed over GPUs, 0 or more (250 = two and a half GPUs)`);
    }
    return Math.round(n * 10);
  });
  if (issues.length > 0) throw new GsError(ErrorCodes.invalidArgument, describeIssues(issues), { details: { issues } });
  return { gpus, memoryBytes, computeMilli };
}

function field<T>(value: T | null | undefined, base: number | null, parse: (v: T) => number | null): number | null {
  if (value === undefined) return base;
  if (value === null) return null;
  return parse(value);
}

function issue(issues: Issue[], name: string, code: Issue['code'], message: string): null {
  issues.push({ field: name, code, message });
  return null;
}

/** The quotas in the scheduler's form (missing field = no limit). */
export function quotaMap(tenants: readonly TenantRecord[]): Map<string, TenantQuota> {
  const map = new Map<string, TenantQuota>();
  for (const t of tenants) {
    const q: { gpus?: number; memoryBytes?: number; computeMilli?: number } = {};
    if (t.quota.gpus !== null) q.gpus = t.quota.gpus;
    if (t.quota.memoryBytes !== null) q.memoryBytes = t.quota.memoryBytes;
    if (t.quota.computeMilli !== null) q.computeMilli = t.quota.computeMilli;
    map.set(t.name, q);
  }
  return map;
}

export function checkTenantName(name: string): string {
  if (!TENANT_NAME.test(name)) throw new GsError(ErrorCodes.invalidArgument, `name: "${name}" is not a tenant name; expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  return name;
}

const NONE: TenantUsage = { gpus: 0, memoryBytes: 0, computeMilli: 0 };

/** Tenants with their usage; `usage` is what running tasks hold per tenant. */
export function tenantViews(store: TaskStore, usage: ReadonlyMap<string, TenantUsage>): TenantView[] {
  const live = store.list();
  const counts = new Map<string, { running: number; queued: number }>();
  for (const t of live) {
    if (t.tenant === null) continue;
    const c = counts.get(t.tenant) ?? { running: 0, queued: 0 };
    if (t.state === 'queued') c.queued += 1;
    else c.running += 1;
    counts.set(t.tenant, c);
  }
  const records = store.tenants.list();
  const names = new Set([...records.map((r) => r.name), ...counts.keys()]);
  return [...names].sort().map((name) => {
    const r = records.find((x) => x.name === name);
    const c = counts.get(name) ?? { running: 0, queued: 0 };
    return {
      name,
      quota: r?.quota ?? NO_QUOTA,
      usage: usage.get(name) ?? NONE,
      running: c.running,
      queued: c.queued,
      registered: r !== undefined,
      createdAt: r?.createdAt ?? null,
      updatedAt: r?.updatedAt ?? null,
    };
  });
}
