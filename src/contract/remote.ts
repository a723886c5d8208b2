/** POST /v1/remote/sessions: a remote GPU session opened by the daemon (docs/remote.md). */
import { z } from 'zod';
import { TaskSchema } from './schemas.js';

const Quantity = z.union([z.number(), z.string().min(1).max(64)]);

export const OpenRemoteSessionSchema = z
  .strictObject({
    memory: Quantity.optional().describe('GPU memory: 8Gi, 8192Mi, 50%, or bytes (default: the whole GPU)'),
    compute: Quantity.optional().describe('compute, percent: 30 or 30% (default: no limit)'),
    priority: Quantity.optional().describe('low, normal, high or 0-1000 (a user token: at most its maxPriority)'),
    gpus: z.literal(1).optional().describe('a session holds one GPU'),
    tenant: z.string().min(1).max(64).optional(),
    port: z.number().int().min(0).max(65535).optional().describe("the worker's port on the daemon's machine; 0 or absent: any free one"),
    connectTimeoutSeconds: z.number().min(1).max(86400).optional().describe('how long the worker waits for its client once it runs (default 60)'),
    waitSeconds: z.number().min(0).max(60).optional().describe('how long this call waits for the worker to listen (default 10); a session still queued then is answered with port null'),
    tls: z.boolean().optional().describe("TLS 1.3 between the client and the worker, the worker's certificate pinned (docs/remote.md \"TLS\"); default: on when this request came over TLS"),
  })
  .meta({ id: 'OpenRemoteSession' });
export type OpenRemoteSession = z.infer<typeof OpenRemoteSessionSchema>;

export const RemoteSessionSchema = z
  .object({
    task: TaskSchema,
    port: z.number().nullable().describe("the worker's port; null: not listening yet (queued): it is the task's first output line"),
    endpoint: z.string().nullable().describe('host:port as this request reached the daemon (127.0.0.1 over a Unix socket)'),
    key: z.string().describe('the one-time session key, 64 hex digits: shown only here, never stored in the task'),
    tls: z
      .object({
        sha256: z.string().nullable().describe("the SHA-256 of the worker's certificate, 64 lowercase hex digits, for the client to pin; null: not listening yet (queued): then it is in the task's first output line"),
      })
      .nullable()
      .describe('null: the session speaks plaintext'),
  })
  .meta({ id: 'RemoteSession' });
export type RemoteSessionBody = z.infer<typeof RemoteSessionSchema>;

