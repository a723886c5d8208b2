import type { Task } from '../contract/task.js';

/** The queue's order: higher priority first, then earlier arrival. */
export function queueOrder(a: Pick<Task, 'priority' | 'seq'>, b: Pick<Task, 'priority' | 'seq'>): number {
  return b.priority - a.priority || a.seq - b.seq;
}
