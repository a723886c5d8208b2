/** What every route module shares: the app type they register on, what they may reach, error responses, the wire form. */
import type { FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { ErrorBodySchema, type TaskBody } from '../../contract/schemas.js';
import type { Task } from '../../contract/task.js';
import type { SampleSource } from '../../contract/monitor.js';
import type { Daemon } from '../../node/daemon.js';
import type { TokenAuthority } from '../../node/tokens.js';

/** The app as routes see it: requests validated and responses typed by the contract's zod schemas. */
export type Api = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger, ZodTypeProvider>;

export interface RouteContext {
  readonly daemon: Daemon;
  readonly backend: { readonly kind: 'nvml' | 'simulated'; readonly description: string };
  /** Tokens made, listed and revoked through the API; null: none kept (tests). */
  readonly tokens?: TokenAuthority | null;
  /** The monitor's samples; null: none taken (tests that build the API alone). */
  readonly samples?: SampleSource | null;
  /** The dashboard's built files; absent: dist/web (routes/dashboard.ts defaultWebRoot). */
  readonly webRoot?: string | null;
}

export const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 422: ErrorBodySchema, 429: ErrorBodySchema };
export const checkpointErrors = { ...errors, 503: ErrorBodySchema };

/** A response body already serialized (and shaped by its schema when it was made); server.ts's serializer sends it as it is. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** A task as its wire type: the same shape (src/contract/schemas.ts checks it at compile time), minus `readonly`. */
export function wire(task: Task): TaskBody {
  return task as TaskBody;
}

/** A task by id (null once it is gone) and its tenant (undefined once gone): what authorize.ts asks to hide or show a task's id. */
export function taskLookups(daemon: Pick<Daemon, 'get'>): { taskOf: (id: string) => Task | null; tenantOf: (id: string) => string | null | undefined } {
  const taskOf = (id: string): Task | null => {
    try {
      return daemon.get(id);
    } catch {
      return null;
    }
  };
  const tenantOf = (id: string): string | null | undefined => {
    const task = taskOf(id);
    return task === null ? undefined : task.tenant;
  };
  return { taskOf, tenantOf };
}
