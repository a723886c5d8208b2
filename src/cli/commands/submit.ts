/** Submitting a task so that a retry never makes a second one (`run`, `run --remote`, `remote open`). */
import { randomUUID } from 'node:crypto';
import type { SubmitTask, TaskBody } from '../../contract/schemas.js';
import { ErrorCodes, isGsError } from '../../domain/index.js';
import type { Client } from '../client.js';

/** How long `run` waits before each retry of its submission when the daemon goes away mid-request. */
const RETRY_DELAYS_MS = [250, 500, 1000, 2000];

/**
 * Submits with an Idempotency-Key, retrying when the daemon dropped the connection (a restart,
 * a crash) with the same key: the daemon answers a retry of a submission it already took with
 * that task, so a retry never makes a second one. A daemon that was never there is not retried.
 */
export async function submit(client: Client, body: SubmitTask, sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms))): Promise<TaskBody> {
  const headers = { 'idempotency-key': randomUUID() };
  let dropped = false;
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.json<TaskBody>('POST', '/v1/tasks', body, headers);
    } catch (err) {
      const code = isGsError(err) && err.code === ErrorCodes.daemonUnreachable ? ((err.cause as NodeJS.ErrnoException | undefined)?.code ?? '') : '';
      // Reset or closed: it may have taken the task. Refused after that: it is restarting.
      dropped ||= code === 'ECONNRESET' || code === 'EPIPE';
      const delay = RETRY_DELAYS_MS[attempt];
      if (!dropped || code === '' || delay === undefined) throw err;
      await sleep(delay);
    }
  }
}
