/**
 * Alerts and silences in the daemon's SQLite database (tables from migration 9), so a restart
 * keeps them: firing alerts are taken back by the engine, resolved ones stay listed up to
 * `keepResolved` (the oldest go first), silences stay until a week after they end.
 */
import type Database from 'better-sqlite3';
import type { Silence, SilenceMatcher } from '../../contract/alerts.js';
import type { AlertEvent } from '../../contract/monitor.js';

interface AlertRow {
  id: string;
  rule: string;
  severity: AlertEvent['severity'];
  state: AlertEvent['state'];
  subject: string;
  value: number;
  threshold: number;
  started_at: number;
  resolved_at: number | null;
  summary: string;
  silenced: number;
}

interface SilenceRow {
  id: string;
  matchers: string;
  until: number;
  comment: string;
  created_by: string;
  created_at: number;
}

/** Silences that ended more than this long ago are deleted. */
const SILENCE_KEPT_MS = 7 * 86_400_000;

/** The store's statements, prepared once. */
function statements(db: Database.Database) {
  return {
    upsert: db.prepare(
      `INSERT INTO alerts (id, rule, severity, state, subject, value, threshold, started_at, resolved_at, summary, silenced)
       VALUES (@id, @rule, @severity, @state, @subject, @value, @threshold, @started_at, @resolved_at, @summary, @silenced)
       ON CONFLICT (id) DO UPDATE SET state = excluded.state, resolved_at = excluded.resolved_at, silenced = excluded.silenced`,
    ),
    byState: db.prepare('SELECT * FROM alerts WHERE state = ? ORDER BY started_at'),
    // The newest `keepResolved` resolved alerts stay; firing ones always do.
    prune: db.prepare("DELETE FROM alerts WHERE state = 'resolved' AND id NOT IN (SELECT id FROM alerts WHERE state = 'resolved' ORDER BY resolved_at DESC, id LIMIT ?)"),
    insertSilence: db.prepare('INSERT INTO silences (id, matchers, until, comment, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    silences: db.prepare('SELECT * FROM silences ORDER BY created_at, id'),
    silenceById: db.prepare('SELECT * FROM silences WHERE id = ?'),
    endSilence: db.prepare('UPDATE silences SET until = ? WHERE id = ? AND until > ?'),
    pruneSilences: db.prepare('DELETE FROM silences WHERE until < ?'),
  };
}

export class AlertStore {
  private readonly sql: ReturnType<typeof statements>;

  constructor(private readonly db: Database.Database, private keepResolved = 1000) {
    this.sql = statements(db);
  }

  setKeepResolved(keep: number): void {
    this.keepResolved = keep;
  }

  /** Writes an alert as it fired or resolved; a resolution also trims the resolved ones kept. */
  record(alert: AlertEvent): void {
    this.db.transaction(() => {
      this.sql.upsert.run({
        id: alert.id,
        rule: alert.rule,
        severity: alert.severity,
        state: alert.state,
        subject: JSON.stringify(alert.subject),
        value: alert.value,
        threshold: alert.threshold,
        started_at: alert.startedAt,
        resolved_at: alert.resolvedAt,
        summary: alert.summary,
        silenced: alert.silenced ? 1 : 0,
      });
      if (alert.state === 'resolved') this.sql.prune.run(this.keepResolved);
    })();
  }

  alerts(state: AlertEvent['state']): AlertEvent[] {
    return (this.sql.byState.all(state) as AlertRow[]).map(alertOf);
  }

  addSilence(silence: Omit<Silence, 'expired'>): void {
    this.sql.insertSilence.run(silence.id, JSON.stringify(silence.matchers), silence.until, silence.comment, silence.createdBy, silence.createdAt);
  }

  /** Every silence kept (active and recently ended), oldest first; ended ones past a week are deleted first. */
  silences(now: number): Silence[] {
    this.sql.pruneSilences.run(now - SILENCE_KEPT_MS);
    return (this.sql.silences.all() as SilenceRow[]).map((r) => silenceOf(r, now));
  }

  silence(id: string, now: number): Silence | null {
    const row = this.sql.silenceById.get(id) as SilenceRow | undefined;
    return row === undefined ? null : silenceOf(row, now);
  }

  /** Ends a silence now; false if it had already ended. */
  expireSilence(id: string, now: number): boolean {
    return this.sql.endSilence.run(now, id, now).changes > 0;
  }
}

function alertOf(r: AlertRow): AlertEvent {
  return {
    id: r.id,
    rule: r.rule,
    severity: r.severity,
    state: r.state,
    subject: JSON.parse(r.subject) as AlertEvent['subject'],
    value: r.value,
    threshold: r.threshold,
    startedAt: r.started_at,
    resolvedAt: r.resolved_at,
    summary: r.summary,
    silenced: r.silenced === 1,
  };
}

function silenceOf(r: SilenceRow, now: number): Silence {
  return { id: r.id, matchers: JSON.parse(r.matchers) as SilenceMatcher[], until: r.until, comment: r.comment, createdBy: r.created_by, createdAt: r.created_at, expired: r.until <= now };
}
