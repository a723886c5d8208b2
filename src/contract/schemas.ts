/**
 * The HTTP API's wire format, one zod schema per body: fastify validates requests and serializes
 * responses with them, the OpenAPI document (/openapi.json) is generated from them, and the
 * CLI's client uses their inferred types. Times are UTC epoch milliseconds.
 */
import { z } from 'zod';
import { COMPUTE_ACCOUNTING, ISOLATION_MODES } from '../domain/index.js';
import { TASK_LIST_DEFAULT_LIMIT, TASK_LIST_MAX_LIMIT } from './pages.js';
import { shown } from './shown.js';
import type { Task } from './task.js';
import { PREEMPTION_OUTCOMES, TASK_STATES } from './task.js';

export const ErrorBodySchema = z
  .object({
    error: z.object({
      /** Stable: scripts may depend on it (GS_ERR_*). */
      code: z.string(),
      message: z.string(),
      issues: z.array(z.object({ field: z.string(), code: z.string(), message: z.string() })).optional(),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

const Selector = z.strictObject({ include: z.array(z.string().max(256)).max(64).optional(), exclude: z.array(z.string().max(256)).max(64).optional() });

/**
 * A string a process can be given (argv, environment, working directory): no NUL byte, which
 * execve cannot pass and which would cut the value short. Refused at the door with what and
 * where, rather than accepted and failing at start.
 */
const ProcessString = (max: number) => z.string().max(max).refine((v) => !v.includes('\0'), 'contains a NUL byte (\\0), which a program argument, variable or path cannot hold');
/** A slice field written as text (`8Gi`, `high`, `H100-80GB`): short. */
const Short = z.string().max(64);

/** A submission. Slice fields take the same forms as the CLI flags (`8Gi`, `50%`, `30`, `high`). */
export const SubmitTaskSchema = z
  .strictObject({
    command: z
      .array(ProcessString(65536))
      .min(1)
      .max(4096)
      .refine((c) => c[0] !== '', { message: 'the program (the first word) is empty', path: [0] })
      .describe('argv: the program and its arguments, run without a shell'),
    env: z
      .record(z.string(), ProcessString(65536))
      .superRefine((env, ctx) => {
        // Checked here rather than as the record's key schema, whose failure only says "Invalid key in record".
        for (const key of Object.keys(env)) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || key.length > 256) {
            ctx.addIssue({ code: 'custom', path: [shown(key, 64)], message: `"${shown(key)}" is not a variable name; expected at most 256 letters, digits and _, not starting with a digit` });
          }
        }
      })
      .optional(),
    cwd: ProcessString(4096).min(1).optional().describe("absolute working directory on the daemon's machine; the daemon's own if absent"),
    gpus: z.union([z.number(), Short]).optional(),
    memory: z.union([z.number(), Short]).optional().describe('per GPU: 8Gi, 8192Mi, 50%, or bytes'),
    compute: z.union([z.number(), Short]).optional().describe('per GPU, percent: 30 or 30%'),
    priority: z.union([z.number(), Short]).optional().describe('low, normal, high or 0-1000 (a user token: at most its maxPriority, normal by default)'),
    isolation: Short.optional().describe(`one of ${ISOLATION_MODES.join(', ')}`),
    migProfile: Short.optional(),
    models: Selector.optional(),
    uuids: Selector.optional(),
    numaNode: z.union([z.number(), Short]).optional(),
    computeAccounting: Short.optional().describe(`what a time-slice compute limit is a share of: ${COMPUTE_ACCOUNTING[0]} (default), ${COMPUTE_ACCOUNTING.slice(1).join(' or ')} (GPUSHARE_COMPUTE_ACCOUNTING)`),
    tenant: z.string().min(1).max(64).optional(),
  })
  .meta({ id: 'SubmitTask' });
export type SubmitTask = z.infer<typeof SubmitTaskSchema>;

const MemoryQuantity = z.union([z.object({ kind: z.literal('bytes'), bytes: z.number() }), z.object({ kind: z.literal('fraction'), fraction: z.number() })]);
const SelectorOut = z.object({ include: z.array(z.string()), exclude: z.array(z.string()) });

const GpuRefusalSchema = z.object({ gpu: z.number(), reason: z.string().describe("the scheduler filter's reason kind (insufficientGpuMemory, insufficientCompute, quotaMemory, ...)"), text: z.string() });

/** Why a task waits: see contract/task.ts WaitReason. */
export const WaitReasonSchema = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('noRoom'), gpus: z.array(GpuRefusalSchema), preemption: z.enum(PREEMPTION_OUTCOMES), text: z.string() }),
    z.object({ kind: z.literal('quota'), tenant: z.string(), resource: z.enum(['gpus', 'memoryBytes', 'computeMilli']), requested: z.number(), remaining: z.number(), text: z.string() }),
    z.object({ kind: z.literal('behind'), taskId: z.string().nullable().describe("null: another tenant's task (a user token asks)"), text: z.string() }),
    z.object({ kind: z.literal('preempting'), victims: z.array(z.object({ taskId: z.string().nullable().describe("null: another tenant's task (a user token asks)"), action: z.enum(['suspend', 'kill']) })), text: z.string() }),
    z.object({ kind: z.literal('smPartition'), gpus: z.array(GpuRefusalSchema), text: z.string() }),
  ])
  .meta({ id: 'WaitReason' });

export const TaskSchema = z
  .object({
    id: z.string(),
    seq: z.number(),
    state: z.enum(TASK_STATES),
    command: z.array(z.string()),
    env: z.record(z.string(), z.string()),
    cwd: z.string(),
    request: z.object({
      gpus: z.number(),
      memory: MemoryQuantity.nullable(),
      compute: z.number().nullable(),
      priority: z.number(),
      isolation: z.enum(ISOLATION_MODES),
      migProfile: z.string().nullable(),
      models: SelectorOut,
      uuids: SelectorOut,
      numaNode: z.number().nullable(),
      computeAccounting: z.enum(COMPUTE_ACCOUNTING).optional(),
    }),
    priority: z.number(),
    tenant: z.string().nullable(),
    gpus: z.array(z.object({ index: z.number(), uuid: z.string(), memoryBytes: z.number(), computeMilli: z.number() })).nullable(),
    computeLimitPercent: z.number().nullable(),
    smRanges: z
      .array(z.object({ uuid: z.string(), offset: z.number(), count: z.number() }))
      .nullable()
      .describe('isolation sm-partition: the SMs held on each GPU (count from offset, in the driver\'s split order; GPUSHARE_SM_OFFSET)'),
    pid: z.number().nullable(),
    pidStartTime: z.number().nullable(),
    submittedAt: z.number(),
    startedAt: z.number().nullable(),
    finishedAt: z.number().nullable(),
    exitCode: z.number().nullable(),
    signal: z.string().nullable(),
    message: z.string().nullable(),
    peakMemoryBytes: z.number().nullable(),
    killRequested: z.boolean(),
    adopted: z.boolean(),
    suspendedAt: z.number().nullable(),
    suspensions: z.number(),
    preemptedBy: z.string().nullable(),
    autoResume: z.boolean(),
    waiting: WaitReasonSchema.nullable().describe("why it has not started yet (per GPU, which filter refused it; or its tenant's quota; or the task ahead of it), as of the queue's last pass; null when not waiting"),
    stdoutPath: z.string(),
    stderrPath: z.string(),
    regionPath: z.string(),
  })
  .meta({ id: 'Task' });
export type TaskBody = z.infer<typeof TaskSchema>;

// The wire type and the daemon's record must stay the same shape; this fails to compile otherwise.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const taskShapeMatches: Same<TaskBody, DeepMutable<Task>> = true;
void taskShapeMatches;
type DeepMutable<T> = T extends readonly (infer U)[] ? DeepMutable<U>[] : T extends object ? { -readonly [K in keyof T]: DeepMutable<T[K]> } : T;

export const TaskIdParamsSchema = z.object({ id: z.string().min(1).max(64) });

const Flag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

/** A task list's query: a page (contract/pages.ts) filtered by state and tenant. */
export const ListTasksQuerySchema = z.strictObject({
  all: Flag.optional().describe('finished tasks too (default: queued, running and suspended ones)'),
  limit: z.coerce.number().int().min(1).max(TASK_LIST_MAX_LIMIT).optional().describe(`at most this many (default ${TASK_LIST_DEFAULT_LIMIT})`),
  cursor: z.string().regex(/^\d{1,15}$/, 'is not a cursor; pass the X-Next-Cursor header of the previous page as it is').optional().describe('the tasks after this one: the previous page\'s X-Next-Cursor'),
  state: z
    .string()
    .max(200)
    .refine((v) => v.split(',').every((s) => (TASK_STATES as readonly string[]).includes(s)), `is not a list of task states; expected some of ${TASK_STATES.join(', ')}, comma-separated`)
    .optional()
    .describe('only tasks in these states, comma-separated (any state, finished or not)'),
  tenant: z.string().min(1).max(64).optional().describe("only this tenant's tasks (admin; a user token lists its own tenant's only)"),
});
export type ListTasksQuery = z.input<typeof ListTasksQuerySchema>;

export const LogsQuerySchema = z.strictObject({
  follow: Flag.optional(),
  stream: z.enum(['stdout', 'stderr', 'both']).optional(),
  tail: z.coerce.number().int().min(0).max(1_000_000).optional().describe("only each stream's last N lines (then what follows, with follow=1)"),
});

export const KillBodySchema = z
  .strictObject({
    signal: z.string().max(16).optional().describe('SIGTERM (default), SIGINT, SIGKILL, or a number'),
    graceSeconds: z.number().min(0).max(3600).optional().describe('then SIGKILL after this long; the daemon default if absent'),
  })
  .meta({ id: 'KillTask' });

/** A finished task removed (DELETE /v1/tasks/:id, POST /v1/tasks/prune): what its directory held. */
export const RemovedTaskSchema = z.object({ id: z.string(), freedBytes: z.number().describe('bytes its logs and state files held') }).meta({ id: 'RemovedTask' });
export type RemovedTaskBody = z.infer<typeof RemovedTaskSchema>;

export const PruneBodySchema = z
  .strictObject({
    before: z.number().int().min(0).optional().describe('only tasks that ended before this time (UTC epoch ms); all finished tasks if absent'),
    dryRun: z.boolean().optional().describe('say which tasks would go, removing nothing'),
  })
  .meta({ id: 'PruneTasks' });

/** POST /v1/tasks/:id/move: the GPUs (by index on the daemon's machine) the task's slices move to, one per GPU it has, in its GPUs' order. */
export const MoveBodySchema = z
  .strictObject({
    gpus: z.array(z.number().int().min(0)).min(1).max(64).describe("the target GPUs' indices, one per GPU of the task, in its GPUs' order; each of the same model as the one it replaces"),
  })
  .meta({ id: 'MoveTask' });
export type MoveBody = z.infer<typeof MoveBodySchema>;

export const PruneResponseSchema = z
  .object({ removed: z.array(RemovedTaskSchema), freedBytes: z.number(), dryRun: z.boolean() })
  .meta({ id: 'PruneResult' });
export type PruneResponseBody = z.infer<typeof PruneResponseSchema>;

export const EventsQuerySchema = z.strictObject({
  since: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10000).optional(),
  follow: Flag.optional(),
});

/** GET /v1/monitor/stream: events=1 interleaves the caller's task events and alerts with the samples (lines `{"sample": ...}`, `{"event": ...}` and `{"alert": ...}`). */
export const MonitorStreamQuerySchema = z.strictObject({
  events: Flag.optional(),
});

export const EventSchema = z
  .object({ seq: z.number(), at: z.number(), type: z.string(), taskId: z.string().nullable(), data: z.record(z.string(), z.unknown()) })
  .meta({ id: 'Event' });

const GpuCordonSchema = z.object({ by: z.string(), at: z.number().describe('UTC epoch ms'), note: z.string().nullable() });
const GpuFaultSchema = z.object({ kind: z.enum(['xid', 'ecc']), code: z.number().nullable().describe('the XID number, or the uncorrectable ECC count'), at: z.number().describe('UTC epoch ms') });

/** A GPU as `gpushare gpus --json` prints it, plus what the daemon placed on it. */
export const GpuSchema = z
  .looseObject({
    index: z.number(),
    uuid: z.string(),
    name: z.string(),
    model: z.string(),
    health: z.enum(['ok', 'lost']),
    memoryTotalBytes: z.number(),
    memoryUsedBytes: z.number(),
    memoryFreeBytes: z.number(),
    utilizationGpu: z.number().nullable(),
    slices: z.array(
      z.object({
        taskId: z.string().nullable().describe("null for another tenant's task (user tokens see that it is there and its size, not whose it is)"),
        tenant: z.string().nullable(),
        priority: z.number(),
        memoryBytes: z.number().describe('reserved for the task on this GPU'),
        computeMilli: z.number().describe('compute reserved, milli-GPU; 0 = best effort'),
        usedMemoryBytes: z.number().nullable().describe("what the task's processes hold now, from its region (about 1 s old); null before its first CUDA call"),
        computeShare: z.number().nullable().describe('achieved compute share, 0..1, from its region'),
        smRange: z
          .object({ offset: z.number(), count: z.number() })
          .nullable()
          .describe('isolation sm-partition: the SMs it holds here, count from offset in the driver\'s split order; null otherwise'),
      }),
    ),
    allocatedMemoryBytes: z.number(),
    allocatedComputeMilli: z.number(),
    cordoned: z.boolean().describe("an admin's cordon (gpushare gpu cordon): no new placements here; running work stays"),
    cordon: GpuCordonSchema.nullable(),
    fault: GpuFaultSchema.nullable().describe('an XID or uncorrectable ECC fault not yet recovered (a reset, or the ECC count back to 0) or cleared (uncordon): no new placements here'),
  })
  .meta({ id: 'Gpu' });

/** POST /v1/gpus/:gpu/cordon's body. */
export const CordonGpuSchema = z.strictObject({ note: z.string().min(1).max(200).regex(/^[^\n\r]*$/, 'one line').optional().describe('why, for whoever reads `gpushare gpus` (one line, at most 200 characters)') }).meta({ id: 'CordonGpu' });

/** `:gpu` in /v1/gpus/:gpu/...: the GPU's index or its UUID. */
export const GpuParamsSchema = z.object({ gpu: z.string().min(1).max(100).describe('the GPU index (0, 1, ...) or its UUID (GPU-...)') });

/** What a cordon or uncordon leaves on the GPU. */
export const GpuHealthSchema = z
  .object({ index: z.number(), uuid: z.string(), cordoned: z.boolean(), cordon: GpuCordonSchema.nullable(), fault: GpuFaultSchema.nullable() })
  .meta({ id: 'GpuHealth' });
export type GpuHealthBody = z.infer<typeof GpuHealthSchema>;

export const GpusResponseSchema = z.object({ backend: z.enum(['nvml', 'simulated']), description: z.string(), gpus: z.array(GpuSchema) });
export type GpusResponse = z.infer<typeof GpusResponseSchema>;

/** One line of a task's output in the NDJSON logs format. */
export const LogChunkSchema = z.object({ stream: z.enum(['stdout', 'stderr']), data: z.string() });
export type LogChunk = z.infer<typeof LogChunkSchema>;

const QuotaValue = z.union([z.number(), z.string().max(64)]).nullable();

/** A quota as written: null removes a limit, an absent field keeps it. */
export const QuotaInputSchema = z
  .strictObject({
    gpus: QuotaValue.optional().describe('GPUs held at once, summed over running tasks'),
    memory: QuotaValue.optional().describe('GPU memory held at once, summed over GPUs: 160Gi, or bytes'),
    compute: QuotaValue.optional().describe('compute held at once, percent of one GPU summed over GPUs: 250 = two and a half GPUs'),
  })
  .meta({ id: 'QuotaInput' });

export const CreateTenantSchema = z
  .strictObject({ name: z.string().min(1).max(64), quota: QuotaInputSchema.optional() })
  .meta({ id: 'CreateTenant' });

export const UpdateTenantSchema = z.strictObject({ quota: QuotaInputSchema }).meta({ id: 'UpdateTenant' });

export const TenantNameParamsSchema = z.object({ name: z.string().min(1).max(64) });

const Usage = z.object({ gpus: z.number(), memoryBytes: z.number(), computeMilli: z.number() });

export const TenantSchema = z
  .object({
    name: z.string(),
    quota: z.object({ gpus: z.number().nullable(), memoryBytes: z.number().nullable(), computeMilli: z.number().nullable() }),
    usage: Usage,
    running: z.number(),
    queued: z.number(),
    registered: z.boolean().describe('false: the tenant only has tasks, no quota record'),
    createdAt: z.number().nullable(),
    updatedAt: z.number().nullable(),
  })
  .meta({ id: 'Tenant' });
export type TenantBody = z.infer<typeof TenantSchema>;

export const AuditQuerySchema = z.strictObject({
  since: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10000).optional(),
});

export const AuditRecordSchema = z
  .object({
    seq: z.number(),
    at: z.number(),
    actor: z.string(),
    role: z.string(),
    action: z.string(),
    target: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()),
    result: z.string().describe("'ok', or the error code the change was refused with"),
    message: z.string().nullable(),
  })
  .meta({ id: 'AuditRecord' });
export type AuditRecordBody = z.infer<typeof AuditRecordSchema>;

/** A token to make (admin): for a tenant and role, lasting `expires` (`30d`, `12h`; absent: it does not expire). */
export const CreateTokenSchema = z
  .strictObject({
    tenant: z.string().min(1).max(64),
    role: z.enum(['user', 'admin']).optional().describe('user (default): its own tenant only; admin: everything'),
    expires: z.string().max(16).optional().describe('how long it works: 90s, 15m, 12h, 30d, 2w'),
    maxPriority: z.union([z.number().int().min(0).max(1000), z.enum(['low', 'normal', 'high'])]).optional().describe('the highest priority a user token may submit at (default normal)'),
  })
  .meta({ id: 'CreateToken' });

export const TokenSchema = z
  .object({
    id: z.string().describe('the first 12 hex digits of its sha256: its name in lists, revocation and the audit log'),
    tenant: z.string(),
    role: z.enum(['user', 'admin']),
    maxPriority: z.number().nullable().describe('null: not limited (admin)'),
    source: z.enum(['config', 'api']),
    createdAt: z.number().nullable(),
    expiresAt: z.number().nullable(),
    revokedAt: z.number().nullable(),
    state: z.enum(['active', 'expired', 'revoked']),
  })
  .meta({ id: 'Token' });
export type TokenBody = z.infer<typeof TokenSchema>;

/** A token just made: the secret is here once and kept nowhere. */
export const CreatedTokenSchema = TokenSchema.extend({ token: z.string() }).meta({ id: 'CreatedToken' });
export type CreatedTokenBody = z.infer<typeof CreatedTokenSchema>;

export const TokenIdParamsSchema = z.object({ id: z.string().min(1).max(64) });
