/**
 * A task's changes and who hears of them: each change is the task row and its event in one
 * SQLite transaction, then the event goes to every listener (the API's live streams). A
 * listener that throws is logged and does not stop the others.
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

  /** Updates a task and records the event in one transaction, then tells listeners. */
  commit(id: string, change: TaskUpdate, type: string, data: Record<string, unknown>): void {
    const event = this.store.transaction(() => {
      this.store.update(id, change);
      return this.store.recordEvent(this.now(), type, id, data);
    });
    this.emit(event);
  }

  /** Records an event that changes no task row (a preemption's start), then tells listeners. */
  record(type: string, taskId: string | null, data: Record<string, unknown>): void {
    this.emit(this.store.recordEvent(this.now(), type, taskId, data));
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
