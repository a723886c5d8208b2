/**
 * The API contract: what the daemon's API takes and returns (zod schemas and their types), task
 * states, who asks, error codes and the default socket. The server, the CLI and every later
 * front door (dashboard, Kubernetes, remote) import it from here, so they cannot drift apart.
 */
export * from './schemas.js';
export * from './task.js';
export * from './gpus.js';
export * from './pages.js';
export { parseDuration } from './duration.js';
export { shown } from './shown.js';
export type { Principal } from './principal.js';
export { fromErrorBody } from './error-body.js';
export { defaultSocketPath } from './paths.js';
export { ErrorCodes, GsError, type ErrorCode } from '../domain/errors.js';
export * from './monitor.js';
export * from './history.js';
export * from './remote.js';
export { listeningPort, workerListening, type WorkerListening } from './remote-worker.js';
