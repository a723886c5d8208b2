/**
 * The SDK's errors: every failure is a GsError with a stable code (STYLE 7), never a bare Error.
 * - GS_ERR_CUDA: the worker's driver (or the worker's checks) answered a CUresult other than
 *   success; `result` and `resultName` say which, as cuGetErrorName would.
 * - GS_ERR_REMOTE_LINK_LOST: the connection broke; this call and every later one fail at once.
 * - GS_ERR_REMOTE_PROTOCOL: the peer sent bytes the protocol does not allow; the link is dropped.
 * - GS_ERR_INVALID_ARGUMENT: a call's own arguments are wrong; nothing was sent.
 */
import { ErrorCodes, GsError } from '../../domain/index.js';
import { cudaResultName } from './cuda-result.js';

/** A CUDA call that returned an error: `result` (a CUresult) and its name. */
export class CudaError extends GsError {
  readonly result: number;
  readonly resultName: string;

  constructor(call: string, result: number, note?: string) {
    const resultName = cudaResultName(result);
    super(ErrorCodes.cuda, `${call}: ${resultName} (${result})${note ? `: ${note}` : ''}`, { details: { call, result, resultName } });
    this.result = result;
    this.resultName = resultName;
  }
}

export function isCudaError(value: unknown): value is CudaError {
  return value instanceof CudaError;
}

export function linkLost(why: string, cause?: unknown): GsError {
  return new GsError(ErrorCodes.remoteLinkLost, `remote session: link lost: ${why}`, cause === undefined ? undefined : { cause });
}

export function protocolError(why: string): GsError {
  return new GsError(ErrorCodes.remoteProtocol, `remote session: the worker broke the protocol: ${why}`);
}

export function badArgument(message: string): GsError {
  return new GsError(ErrorCodes.invalidArgument, message);
}
