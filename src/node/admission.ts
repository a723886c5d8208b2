/**
 * Admission: whether a submission may join the queue at all. Pure functions, each refusing with
 * a stable code and a message naming what is wrong: the request is valid; it could ever run on
 * this machine (with nothing else on it; otherwise it would block the queue forever); and it is
 * within its tenant's quota with nothing else of the tenant running (otherwise it could never
 * start). A refused submission changes nothing.
 */
import { checkRequestAgainstGpus, describeIssues, describeSmUnsupported, ErrorCodes, GsError, parseSliceRequest, type Gpu, type SliceRequest } from '../domain/index.js';
import { buildSnapshot, createPrng, describeDecision, describePartitionTooLarge, schedule, type Decision, type NodeSpec, type Policy, type TenantQuota } from '../scheduler/index.js';
import type { SubmitInput } from '../contract/task.js';
import type { Quota } from './store/tenants.js';
import { placementRequest } from './placement.js';
import { describeQuotaRefusal, gpuReasons } from './reasons.js';

const MAX_COMMAND_ARGS = 4096;

export interface AdmissionContext {
  /** The machine's GPUs as the backend reports them now. */
  readonly devices: readonly Gpu[];
  /** This machine as the scheduler sees it (SM layouts included). */
  readonly node: NodeSpec;
  readonly policy: Policy;
  /**
   * Request shapes (their JSON) already found able to run on `node` alone, kept by the caller
   * while `node` is the same (inventory.ts): a burst of like submissions schedules once.
   */
  readonly feasible?: Set<string>;
}

/** The submission's slice request, if it may be queued; a GsError saying why not otherwise. */
export function admit(ctx: AdmissionContext, input: SubmitInput, tenant: { readonly name: string; readonly quota: Quota; readonly quotas: ReadonlyMap<string, TenantQuota> } | null): SliceRequest {
  const request = validRequest(input);
  checkGpus(ctx, request);
  // A placement within the tenant's quota is a placement on the empty machine too: in the
  // common case one decision answers both questions. Only a refusal asks again without
  // quotas, so that "can never run here" is said before "exceeds the quota", as it always was.
  const alone = tenant === null ? null : decideAlone(ctx, request, tenant);
  if (alone === null || alone.status !== 'ok') checkMachine(ctx, request);
  if (tenant !== null && alone !== null && alone.status !== 'ok') {
    throw new GsError(ErrorCodes.quotaExceeded, `exceeds tenant "${tenant.name}"'s quota, so it could never start: ${describeQuotaRefusal(alone)}`, { details: { quota: tenant.quota } });
  }
  return request;
}

/** The command and the slice request are well formed, and the daemon can run its isolation. */
function validRequest(input: SubmitInput): SliceRequest {
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

/** Do the machine's GPUs have what the request names (models, UUIDs, sizes)? */
function checkGpus(ctx: AdmissionContext, request: SliceRequest): void {
  const issues = checkRequestAgainstGpus(request, ctx.devices);
  if (issues.length > 0) throw new GsError(ErrorCodes.unsatisfiable, describeIssues(issues), { details: { issues } });
}

/** Could it run on this machine with nothing else on it? */
function checkMachine(ctx: AdmissionContext, request: SliceRequest): void {
  const key = ctx.feasible ? JSON.stringify(request) : '';
  if (ctx.feasible?.has(key)) return;
  const decision = schedule(buildSnapshot([ctx.node]), placementRequest({ id: 'admission', request, tenant: null }), { policy: ctx.policy, rng: createPrng(1) });
  if (decision.status === 'ok') {
    ctx.feasible?.add(key);
  } else {
    if (request.isolation === 'sm-partition') refusePartition(decision, request.gpus);
    throw new GsError(ErrorCodes.unsatisfiable, `can never run here: ${describeDecision(decision)}`);
  }
}

/**
 * An sm-partition request that cannot run here even alone: the reason the scheduler gave, said
 * of the request (what is wrong and what is accepted). Returns when the refusal is not about
 * partitions (the caller says it in general).
 */
function refusePartition(decision: Decision, gpus: number): void {
  const reasons = gpuReasons(decision);
  const unsupported = reasons.filter((r) => r.kind === 'notPartitionable');
  const first = unsupported[0];
  if (first !== undefined) {
    const selected = reasons.filter((r) => r.kind === 'modelNotSelected' || r.kind === 'uuidNotSelected' || r.kind === 'numaMismatch').length;
    const eligible = decision.status === 'unschedulable' && decision.rejections[0]?.reason.kind === 'tooFewGpus' ? decision.rejections[0].reason.eligible : 0;
    const capable = eligible + reasons.length - unsupported.length - selected;
    if (capable < gpus) {
      const detail = `isolation: ${describeSmUnsupported(first.name, first)}`;
      throw new GsError(ErrorCodes.unsatisfiable, `asks for ${gpus} SM-partitioned GPU(s) but ${capable} here can be partitioned; ${detail}`, {
        details: { issues: [{ field: 'isolation', code: 'unsupported', message: detail }] },
      });
    }
  }
  const tooLarge = reasons.find((r) => r.kind === 'partitionTooLarge');
  if (tooLarge !== undefined) {
    // A partition bigger than the SMs the driver groups could never start (libgpushare refuses it).
    const detail = `compute: ${describePartitionTooLarge(tooLarge)}`;
    throw new GsError(ErrorCodes.unsatisfiable, detail, { details: { issues: [{ field: 'compute', code: 'outOfRange', message: detail }] } });
  }
}

/** Its decision on this machine with nothing else on it, under its tenant's quota. */
function decideAlone(ctx: AdmissionContext, request: SliceRequest, tenant: { readonly name: string; readonly quotas: ReadonlyMap<string, TenantQuota> }): Decision {
  return schedule(buildSnapshot([ctx.node], [], tenant.quotas), placementRequest({ id: 'admission', request, tenant: tenant.name }), { policy: ctx.policy, rng: createPrng(1) });
}
