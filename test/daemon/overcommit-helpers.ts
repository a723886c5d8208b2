/**
 * What the memory overcommit daemon tests share (overcommit.test.ts, overcommit-room.test.ts):
 * fake-phases, the stand-in GPU job they run on the fake driver, and waiting for a task's line.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { TaskBody } from '../../src/contract/schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { sleep } from './harness.js';

export const PHASES = `${REPO_ROOT}build/native/fake/fake-phases`;
export const MiB = 2 ** 20;

export type Event = { seq: number; type: string; taskId: string | null; data: Record<string, unknown> };

export async function waitForOutput(task: TaskBody, text: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(existsSync(task.stdoutPath) && readFileSync(task.stdoutPath, 'utf8').includes(text))) {
    if (Date.now() > deadline) throw new Error(`task ${task.id} never printed "${text}"`);
    await sleep(30);
  }
}
