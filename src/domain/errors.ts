/**
 * Stable error codes. A code never changes meaning once published: scripts and the CLI's exit
 * status depend on it, and it survives the trip from daemon to CLI in API bodies.
 */
export const ErrorCodes = {
  /** A value given by the user is malformed or out of range (unit strings, counts, flags). */
  invalidArgument: 'GS_ERR_INVALID_ARGUMENT',
  /** A slice request is well-formed but cannot be valid on this fleet (e.g. more memory than any GPU has). */
  unsatisfiable: 'GS_ERR_UNSATISFIABLE',
  /** NVML could not be loaded or initialised (no library, no driver, version too old). */
  nvmlUnavailable: 'GS_ERR_NVML_UNAVAILABLE',
  /** An NVML call failed in a way that is not simply "not supported". */
  nvmlCall: 'GS_ERR_NVML_CALL',
  /** A GPU stopped answering (fell off the bus, needs a reset). */
  gpuLost: 'GS_ERR_GPU_LOST',
  /** A named thing (GPU, task, file) does not exist. */
  notFound: 'GS_ERR_NOT_FOUND',
  /** The thing exists but its state does not allow the action (kill a task that already ended). */
  conflict: 'GS_ERR_CONFLICT',
  /** A TCP API call without a valid bearer token. */
  unauthenticated: 'GS_ERR_UNAUTHENTICATED',
  /** Too many failed authentications from this address: wait (Retry-After) before trying again. */
  rateLimited: 'GS_ERR_RATE_LIMITED',
  /** An Idempotency-Key used again with a different request: a new request needs a new key. */
  idempotencyMismatch: 'GS_ERR_IDEMPOTENCY_MISMATCH',
  /** The caller is known but may not do this (another tenant's task, an admin-only call). */
  forbidden: 'GS_ERR_FORBIDDEN',
  /** The request alone is more than its tenant's quota allows: it could never start. */
  quotaExceeded: 'GS_ERR_QUOTA_EXCEEDED',
  /** The CLI cannot reach a daemon at the address it was given. */
  daemonUnreachable: 'GS_ERR_DAEMON_UNREACHABLE',
  /** Suspend/resume is not possible here: no CUDA driver with the checkpoint API (driver 570+). */
  checkpointUnavailable: 'GS_ERR_CHECKPOINT_UNAVAILABLE',
  /** The driver refused or failed a checkpoint step (details carry its code and CUresult); nothing was changed. */
  checkpointFailed: 'GS_ERR_CHECKPOINT_FAILED',
  /** MPS was required (mps: on) and cannot be had: no nvidia-cuda-mps-control, or it would not start. */
  mpsUnavailable: 'GS_ERR_MPS_UNAVAILABLE',
  /** A CUDA call on a remote GPU session failed: details carry the CUresult (`result`) and its name (`resultName`). */
  cuda: 'GS_ERR_CUDA',
  /** The link to a remote GPU session's worker broke (reset, closed, no answer in time): the session is gone. */
  remoteLinkLost: 'GS_ERR_REMOTE_LINK_LOST',
  /** A remote GPU session's worker sent what the protocol does not allow (docs/remote.md): the link is dropped. */
  remoteProtocol: 'GS_ERR_REMOTE_PROTOCOL',
  /** A bug: never the user's fault. */
  internal: 'GS_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Expected errors are the user's or the environment's doing; everything else is a bug. */
const expectedCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCodes.invalidArgument,
  ErrorCodes.unsatisfiable,
  ErrorCodes.nvmlUnavailable,
  ErrorCodes.nvmlCall,
  ErrorCodes.gpuLost,
  ErrorCodes.notFound,
  ErrorCodes.conflict,
  ErrorCodes.unauthenticated,
  ErrorCodes.rateLimited,
  ErrorCodes.idempotencyMismatch,
  ErrorCodes.forbidden,
  ErrorCodes.quotaExceeded,
  ErrorCodes.daemonUnreachable,
  ErrorCodes.checkpointUnavailable,
  ErrorCodes.checkpointFailed,
  ErrorCodes.mpsUnavailable,
  ErrorCodes.cuda,
  ErrorCodes.remoteLinkLost,
  ErrorCodes.remoteProtocol,
]);

/** The one base error of the project: a stable code, a message for people, optional structured details. */
export class GsError extends Error {
  override readonly name = 'GsError';
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }

  /** True for bad input and environment problems; false for bugs. */
  get expected(): boolean {
    return expectedCodes.has(this.code);
  }
}

export function isGsError(value: unknown): value is GsError {
  return value instanceof GsError;
}
