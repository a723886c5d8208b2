/**
 * Admission: whether a submission may join the queue at all. Pure functions, each refusing with
 * a stable code and a message naming what is wrong: the request is valid; it could ever run on
 * this machine (with nothing else on it; otherwise it would block the queue forever); and it is
 * within its tenant's quota with nothing else of the tenant running (otherwise it could never
 * start). A refused submission changes nothing.
 */
import { checkRequestAgainstGpus, describeIssues, ErrorCodes, firstFit, GsError, matchesSelectors, parseSliceRequest, partitionRange, smLayout, type Gpu, type SliceRequest, type SmGroups, type SmLayout } from '../domain/index.js';
import { buildSnapshot, createPrng, describeDecision, schedule, type NodeSpec, type Policy, type TenantQuota } from '../scheduler/index.js';
import type { SubmitInput } from '../contract/task.js';
import type { Quota } from './store/tenants.js';
import { computeLimitPercent, placementRequest } from './placement.js';
import { describeQuotaRefusal } from './reasons.js';

const MAX_COMMAND_ARGS = 4096;

export interface AdmissionContext {
  /** The machine's GPUs as the backend reports them now. */
  readonly devices: readonly Gpu[];
  readonly node: NodeSpec;
  readonly policy: Policy;
  /** What the driver groups of each GPU's SMs, by UUID; absent GPUs: every whole group of 8. */
  readonly smGroups?: ReadonlyMap<string, SmGroups> | undefined;
}

/** The submission's slice request, if it may be queued; a GsError saying why not otherwise. */
export function admit(ctx: AdmissionContext, input: SubmitInput, tenant: { readonly name: string; readonly quota: Quota; readonly quotas: ReadonlyMap<string, TenantQuota> } | null): SliceRequest {
  const request = validRequest(input);
  checkMachine(ctx, request);
  if (tenant !== null) checkTenantQuota(ctx, request, tenant);
  return request;
}

/** The command and the slice request are well formed, and the daemon can run its isolation. */
export function validRequest(input: SubmitInput): SliceRequest {
  if (input.command.length === 0 || input.command[0] === '') throw new GsError(ErrorCodes.invalidArgument, 'command: is empty; give the program to run and its arguments');
  if (input.command.length > MAX_COMMAND_ARGS) throw new GsError(ErrorCodes.invalidArgument, `command: has ${input.command.length} arguments; at most ${MAX_COMMAND_ARGS}`);
  const parsed = parseSliceRequest(input);
  if (!parsed.ok) throw new GsError(ErrorCodes.invalidArgument, describeIssues(parsed.issues), { details: { issues: parsed.issues } });
  const request = parsed.value;
  if (request.isolation === 'mig') {
    throw new GsError(ErrorCodes.unsatisfiable, 'isolation: mig is not supported by gpushare serve yet (MIG instances are not managed by the daemon); use time-slice, sm-partition or exclusive', {
      details: { issues: [{ field: 'isolation', code: 'unknownValue', message: 'mig is not supported by the daemon yet' }] },
    });
  }
  return request;
}

/** Could it run on this machine with nothing else on it? */
export function checkMachine(ctx: AdmissionContext, request: SliceRequest): void {
  const issues = checkRequestAgainstGpus(request, ctx.devices);
  if (issues.length > 0) throw new GsError(ErrorCodes.unsatisfiable, describeIssues(issues), { details: { issues } });
  if (request.isolation === 'sm-partition' && request.gpus > 0) checkPartitionable(ctx, request);
  const decision = schedule(buildSnapshot([ctx.node]), placementRequest({ id: 'admission', request, tenant: null }), { policy: ctx.policy, rng: createPrng(1) });
  if (decision.status !== 'ok') throw new GsError(ErrorCodes.unsatisfiable, `can never run here: ${describeDecision(decision)}`);
}

/** Enough of the selected GPUs can be partitioned, and the partition fits the SMs their driver groups. */
function checkPartitionable(ctx: AdmissionContext, request: SliceRequest): void {
  const matching = ctx.devices.filter((g) => matchesSelectors(request, g));
  const layouts = matching.map((g) => smLayout(g, ctx.smGroups?.get(g.uuid) ?? null));
  const capable = layouts.flatMap((r) => (r.ok ? [r.value] : []));
  if (capable.length < request.gpus) {
    const why = layouts.find((r) => !r.ok);
    const detail = why && !why.ok ? describeIssues(why.issues) : 'isolation: no GPU here can be partitioned';
    throw new GsError(ErrorCodes.unsatisfiable, `asks for ${request.gpus} SM-partitioned GPU(s) but ${capable.length} here can be partitioned; ${detail}`, {
      details: { issues: [{ field: 'isolation', code: 'unsupported', message: detail }] },
    });
  }
  // A partition bigger than the SMs the driver groups could never start (libgpushare refuses it).
  const percent = computeLimitPercent({ request });
  const fitsAlone = (l: SmLayout, p: number): boolean => firstFit(l, [], partitionRange(l, p)) !== null;
  const fits = capable.filter((l) => percent === null || fitsAlone(l, percent));
  const l = capable[0];
  if (fits.length < request.gpus && percent !== null && l !== undefined) {
    let most = 99;
    while (most > 1 && !fitsAlone(l, most)) most--;
    const detail = `compute: ${percent}% is ${partitionRange(l, percent)} SMs, but the driver groups only ${l.groupable} of the GPU's ${l.total} SMs into partitions: ask for at most ${most}%, or 100% for the whole GPU`;
    throw new GsError(ErrorCodes.unsatisfiable, detail, { details: { issues: [{ field: 'compute', code: 'outOfRange', message: detail }] } });
  }
}

/** Within its tenant's quota with nothing else of the tenant running? */
export function checkTenantQuota(ctx: AdmissionContext, request: SliceRequest, tenant: { readonly name: string; readonly quota: Quota; readonly quotas: ReadonlyMap<string, TenantQuota> }): void {
  const alone = schedule(buildSnapshot([ctx.node], [], tenant.quotas), placementRequest({ id: 'admission', request, tenant: tenant.name }), { policy: ctx.policy, rng: createPrng(1) });
  if (alone.status !== 'ok') {
    throw new GsError(ErrorCodes.quotaExceeded, `exceeds tenant "${tenant.name}"'s quota, so it could never start: ${describeQuotaRefusal(alone)}`, { details: { quota: tenant.quota } });
  }
}
