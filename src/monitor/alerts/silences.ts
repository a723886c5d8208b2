/** Which alerts a silence covers. Pure. */
import type { Silence, SilenceMatcher } from '../../contract/alerts.js';
import type { AlertEvent } from '../../contract/monitor.js';

/** The alert's value for a matcher's field, as text (`gpu` is the index); undefined: the alert has none. */
function fieldOf(alert: AlertEvent, name: SilenceMatcher['name']): string | undefined {
  switch (name) {
    case 'rule':
      return alert.rule;
    case 'severity':
      return alert.severity;
    case 'gpu':
      return alert.subject.gpu === undefined ? undefined : String(alert.subject.gpu);
    default:
      return alert.subject[name];
  }
}

/** Every matcher equals the alert's field (an alert without the field is not matched). */
export function matches(matchers: readonly SilenceMatcher[], alert: AlertEvent): boolean {
  return matchers.every((m) => fieldOf(alert, m.name) === m.value);
}

/** Some silence active at `now` covers the alert. */
export function isSilenced(silences: readonly Pick<Silence, 'matchers' | 'until'>[], alert: AlertEvent, now: number): boolean {
  return silences.some((s) => s.until > now && matches(s.matchers, alert));
}
