import type { FastifyError } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ErrorCodes, isGsError, type ErrorCode } from '../domain/index.js';
import type { ErrorBody } from '../contract/schemas.js';

/** HTTP status for each expected error code; anything else is a bug (500). */
const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.invalidArgument]: 400,
  [ErrorCodes.unauthenticated]: 401,
  [ErrorCodes.forbidden]: 403,
  [ErrorCodes.quotaExceeded]: 403,
  [ErrorCodes.notFound]: 404,
  [ErrorCodes.conflict]: 409,
  [ErrorCodes.unsatisfiable]: 422,
  [ErrorCodes.nvmlUnavailable]: 503,
  [ErrorCodes.gpuLost]: 503,
  [ErrorCodes.checkpointUnavailable]: 503,
  [ErrorCodes.checkpointFailed]: 503,
  [ErrorCodes.mpsUnavailable]: 503,
};

/** Any error a handler throws, as a status and the one error body every endpoint uses. */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody; bug: boolean } {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = (err as FastifyError).validationContext ?? 'body';
    const issues = err.validation.map((v) => {
      const path = v.instancePath.replace(/^\//, '').replaceAll('/', '.');
      return { field: path === '' ? where : path, code: 'malformed', message: v.message ?? 'is invalid' };
    });
    return { status: 400, bug: false, body: { error: { code: ErrorCodes.invalidArgument, message: issues.map((i) => `${i.field}: ${i.message}`).join('; '), issues } } };
  }
  if (isGsError(err)) {
    const status = STATUS[err.code] ?? 500;
    const issues = Array.isArray(err.details?.['issues']) ? (err.details['issues'] as { field: string; code: string; message: string }[]) : undefined;
    return { status, bug: status === 500, body: { error: { code: err.code, message: err.message, ...(issues ? { issues } : {}) } } };
  }
  const fe = err as Partial<FastifyError>;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // fastify's own refusals: malformed JSON, wrong content type, body too large.
    return { status: fe.statusCode, bug: false, body: { error: { code: ErrorCodes.invalidArgument, message: fe.message ?? 'bad request' } } };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, bug: true, body: { error: { code: ErrorCodes.internal, message: `internal error: ${message}` } } };
}

