import { describe, expect, it } from 'vitest';
import { describeEnding } from './daemon.js';
import type { Ending } from './supervisor.js';
import type { Task } from '../contract/task.js';

const task = (killRequested = false): Task => ({ command: ['train.py'], killRequested }) as unknown as Task;
const ending = (e: Partial<Ending>): Ending => ({ status: null, wrapper: null, peakMemoryBytes: null, ...e });

describe('describeEnding', () => {
  it.each<[string, Task, Ending, boolean, object]>([
    ['exit code from the status file', task(), ending({ status: { kind: 'exit', code: 3 }, wrapper: { code: 3, signal: null } }), false, { state: 'exited', exitCode: 3, signal: null }],
    ['a signal from the status file', task(), ending({ status: { kind: 'signal', signal: 15 } }), false, { state: 'exited', exitCode: null, signal: 'SIGTERM' }],
    ['killed on request', task(true), ending({ status: { kind: 'signal', signal: 15 } }), false, { state: 'killed', signal: 'SIGTERM' }],
    ['could not start', task(), ending({ status: { kind: 'error', errno: 2 } }), false, { state: 'failed', message: 'cannot run "train.py": no such file or directory (ENOENT)' }],
    ['wrapper SIGKILLed with the group', task(true), ending({ wrapper: { code: null, signal: 'SIGKILL' } }), false, { state: 'killed', signal: 'SIGKILL', exitCode: null }],
    ['adopted, gone, no status', task(), ending({}), false, { state: 'lost', exitCode: null, message: expect.stringMatching(/not a child of this daemon.*unknown/) }],
    ['gone before the restart, no status', task(), ending({}), true, { state: 'lost', message: expect.stringMatching(/gone when the daemon restarted/) }],
    ['killed and gone, no status', task(true), ending({}), true, { state: 'killed', exitCode: null }],
  ])('%s', (_name, t, e, atStart, expected) => {
    expect(describeEnding(t, e, atStart)).toMatchObject(expected);
  });
});
