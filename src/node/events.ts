/**
 * A task's changes and who hears of them: each change is the task row and its event in one
 * SQLite transaction, then, once that is committed (with the batch it may be part of), the event
 * goes to every listener (the API's live streams): nobody hears of a change that could still
 * roll back. A listener that throws is logged and does not stop the others.
 */
import type { Logger } from 'pino';
import type { EventRecord, TaskStore, TaskUpdate } from './store/tasks.js';

export type EventListener = (event: EventRecord) => void;

export class TaskEvents {
  private readonly listeners = new Set<EventListener>();

  constructor(
    private readonly store: TaskStore,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Updates a task and records the event in one transaction, then tells listeners once it is committed. */
  commit(id: string, change: TaskUpdate, type: string, data: Record<string, unknown>): void {
    const event = this.store.transaction(() => {
      this.store.update(id, change);
      return this.store.recordEvent(this.now(), type, id, data);
    });
    this.store.afterCommit(() => this.emit(event));
  }

  /** Records an event that changes no task row (a preemption's start), then tells listeners once it is committed. */
  record(type: string, taskId: string | null, data: Record<string, unknown>): void {
    const event = this.store.recordEvent(this.now(), type, taskId, data);
    this.store.afterCommit(() => this.emit(event));
  }

  emit(event: EventRecord): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.error({ err }, 'event listener failed');
      }
    }
  }

  close(): void {
    this.listeners.clear();
  }
}
