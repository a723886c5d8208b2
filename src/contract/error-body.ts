import { ErrorCodes, GsError, type ErrorCode } from '../domain/index.js';
import type { ErrorBody } from './schemas.js';

/** The error body back into an error on the client side: codes survive the trip. */
export function fromErrorBody(status: number, body: unknown): GsError {
  const e = (body as Partial<ErrorBody> | undefined)?.error;
  const known = Object.values(ErrorCodes) as string[];
  if (e && typeof e.code === 'string' && typeof e.message === 'string') {
    const code = (known.includes(e.code) ? e.code : ErrorCodes.internal) as ErrorCode;
    return new GsError(code, e.message, e.issues ? { details: { issues: e.issues } } : undefined);
  }
  return new GsError(ErrorCodes.internal, `the daemon answered HTTP ${status} without an error body`);
}
