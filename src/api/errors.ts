import type { FastifyError } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ErrorCodes, isGsError, type ErrorCode } from '../domain/index.js';
import type { ErrorBody } from '../contract/schemas.js';
import { shown } from '../contract/shown.js';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';

/** fastify's refusals that quote what was sent (a whole URL, a path): said without the quote. */
const FRAMEWORK_MESSAGES: Readonly<Record<string, string>> = {
  FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is longer than 100 characters; task ids are 12 hex digits, tenant names at most 64 characters',
  FST_ERR_BAD_URL: 'the URL does not decode (malformed percent-encoding)',
};

/**
 * Node's HTTP parser refusing a request before fastify sees it (headers over 16 KiB: 431; too
 * slow: 408; not HTTP: 400): answered on the socket in the API's error body, then closed.
 */
export function refuseUnparsable(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const message =
    status === 431 ? 'the request line and headers are larger than 16 KiB' : status === 408 ? 'the request was not received in time' : `the request is not valid HTTP (${shown(err.code ?? 'parse error', 40)})`;
  const body = JSON.stringify({ error: { code: ErrorCodes.invalidArgument, message } });
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy(err);
}

/** HTTP status for each expected error code; anything else is a bug (500). */
const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.invalidArgument]: 400,
  [ErrorCodes.unauthenticated]: 401,
  [ErrorCodes.rateLimited]: 429,
  [ErrorCodes.forbidden]: 403,
  [ErrorCodes.quotaExceeded]: 403,
  [ErrorCodes.notFound]: 404,
  [ErrorCodes.conflict]: 409,
  [ErrorCodes.unsatisfiable]: 422,
  [ErrorCodes.idempotencyMismatch]: 422,
  [ErrorCodes.nvmlUnavailable]: 503,
  [ErrorCodes.gpuLost]: 503,
  [ErrorCodes.checkpointUnavailable]: 503,
  [ErrorCodes.checkpointFailed]: 503,
  [ErrorCodes.mpsUnavailable]: 503,
};

/** Any error a handler throws, as a status and the one error body every endpoint uses; no message is ever longer than MAX_MESSAGE. */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody; bug: boolean } {
  const r = errorResponse(err);
  const e = r.body.error;
  if (e.message.length <= MAX_MESSAGE && (e.issues ?? []).every((i) => i.message.length <= MAX_MESSAGE && i.field.length <= MAX_MESSAGE)) return r;
  // Messages quote values through shown(); this is the net under anything that does not.
  const issues = e.issues?.map((i) => ({ ...i, field: shown(i.field, MAX_MESSAGE), message: shown(i.message, MAX_MESSAGE) }));
  return { ...r, body: { error: { ...e, message: shown(e.message, MAX_MESSAGE), ...(issues ? { issues } : {}) } } };
}

const MAX_MESSAGE = 1000;

function errorResponse(err: unknown): { status: number; body: ErrorBody; bug: boolean } {
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
    return { status: fe.statusCode, bug: false, body: { error: { code: fe.statusCode === 404 ? ErrorCodes.notFound : ErrorCodes.invalidArgument, message: FRAMEWORK_MESSAGES[fe.code ?? ''] ?? shown(fe.message ?? 'bad request') } } };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, bug: true, body: { error: { code: ErrorCodes.internal, message: `internal error: ${message}` } } };
}

