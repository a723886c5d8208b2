/** An AlertSource kept in memory for API and browser tests: alerts fired by hand, listed and followed as the daemon's are. */
import type { AlertSource, Silence } from '../../src/contract/alerts.js';
import type { AlertEvent } from '../../src/contract/monitor.js';

export interface HandAlerts extends AlertSource {
  /** Records the alert (replacing one with its id) and tells every follower. */
  fire(alert: AlertEvent): void;
}

export function handAlerts(): HandAlerts {
  const kept = new Map<string, AlertEvent>();
  const followers = new Set<(a: AlertEvent) => void>();
  const none = (): never => {
    throw new Error('hand-made alerts keep no silences');
  };
  return {
    list: (q) => [...kept.values()].filter((a) => (q.state ?? 'firing') === 'all' || a.state === (q.state ?? 'firing')).filter((a) => q.since === undefined || Math.max(a.startedAt, a.resolvedAt ?? 0) >= q.since).reverse(),
    follow(listener) {
      followers.add(listener);
      return () => followers.delete(listener);
    },
    silences: (): Silence[] => [],
    addSilence: none,
    removeSilence: none,
    fire(alert) {
      kept.set(alert.id, alert);
      for (const f of followers) f(alert);
    },
  };
}
