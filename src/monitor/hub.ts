import type { MonitorSample, SampleListener, SampleSource } from '../contract/monitor.js';

/**
 * Hands each sample to every listener. A listener that throws is reported through `onListenerError`
 * and the others still get the sample: one faulty consumer (say, a full disk under the history
 * store) must not silence the exporter or the alerts.
 */
export class SampleHub implements SampleSource {
  private readonly listeners = new Set<SampleListener>();
  private newest: MonitorSample | null = null;

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  latest(): MonitorSample | null {
    return this.newest;
  }

  subscribe(listener: SampleListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  publish(sample: MonitorSample): void {
    this.newest = sample;
    for (const listener of this.listeners) {
      try {
        listener(sample);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
