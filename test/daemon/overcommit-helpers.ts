/**
 * What the memory overcommit daemon tests share (overcommit.test.ts, overcommit-room.test.ts):
 * fake-phases, the stand-in GPU job they run on the fake driver, and the events they read.
 */
import { REPO_ROOT } from '../helpers/cli.js';

export const PHASES = `${REPO_ROOT}build/native/fake/fake-phases`;
export const MiB = 2 ** 20;

export type Event = { seq: number; type: string; taskId: string | null; data: Record<string, unknown> };
