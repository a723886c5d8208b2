/**
 * Alerts' wire and config vocabulary (issue 19): the figures a rule can watch, a rule as the
 * config file writes it, silences, and the bodies of /v1/alerts and /v1/silences. The event
 * itself (AlertEvent) is in monitor.ts with the other monitoring shapes. Units as there: ratios
 * 0..1, seconds, degrees Celsius.
 */
import { z } from 'zod';
import { ALERT_FIGURES, ALERT_SEVERITIES, SILENCE_FIELDS, type AlertFigure, type AlertSeverity } from './alert-names.js';
import type { AlertEvent } from './monitor.js';

export { ALERT_FIGURES, ALERT_SEVERITIES, SILENCE_FIELDS, type AlertFigure, type AlertSeverity, type SilenceField } from './alert-names.js';

/** A rule as the engine runs it (defaults, with the config file's changes applied). */
export interface AlertRule {
  /** Stable: alerts, silences and overrides name it. */
  readonly name: string;
  readonly figure: AlertFigure;
  /** `above`: fires while figure > threshold; `below`: while figure < threshold. */
  readonly direction: 'above' | 'below';
  readonly threshold: number;
  /** Hysteresis: a firing alert resolves only once the figure is back past this (<= for above, >= for below). */
  readonly clear: number;
  /** Seconds the condition must hold before the alert fires (0: at once). */
  readonly forSeconds: number;
  /** For the `_increase` figures: the seconds counted back. */
  readonly windowSeconds: number;
  readonly severity: AlertSeverity;
}

export const ALERT_RULE_NAME = /^[a-z][a-z0-9-]{0,63}$/;

/** Seconds as a number, or a length of time as people write it (`90s`, `5m`, `2h`). */
const Seconds = z.union([
  z.number().min(0).max(30 * 86_400),
  z
    .string()
    .regex(/^\s*\d{1,6}\s*[smhd]\s*$/, 'must be seconds, or a number followed by s, m, h or d (5m)')
    .transform((text) => {
      const m = /^\s*(\d{1,6})\s*([smhd])\s*$/.exec(text) as RegExpExecArray;
      return Number(m[1]) * ({ s: 1, m: 60, h: 3600, d: 86_400 } as const)[m[2] as 's' | 'm' | 'h' | 'd'];
    }),
]);

/**
 * One entry of the config file's `alerts.rules`: with a default rule's name it changes that rule
 * (fields left out keep the default; `enabled: false` turns it off); with a new name it adds a
 * rule, and then `figure`, `threshold` and `severity` are required.
 */
export const AlertRuleConfigSchema = z.strictObject({
  name: z.string().regex(ALERT_RULE_NAME, 'must be lowercase letters, digits and dashes, starting with a letter (at most 64)'),
  enabled: z.boolean().optional(),
  figure: z.enum(ALERT_FIGURES).optional(),
  direction: z.enum(['above', 'below']).optional(),
  threshold: z.number().finite().optional(),
  clear: z.number().finite().optional(),
  for: Seconds.optional(),
  window: Seconds.optional(),
  severity: z.enum(ALERT_SEVERITIES).optional(),
});
export type AlertRuleConfig = z.infer<typeof AlertRuleConfigSchema>;

/** Where alerts are POSTed, in Alertmanager's webhook format (so its receivers work as they are). */
export const AlertWebhookConfigSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
  /** The `receiver` field of the body. */
  name: z.string().min(1).max(64).optional(),
  /** Extra request headers (an Authorization header for the receiver, say). */
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a header name'), z.string().max(4096)).optional(),
  timeoutSeconds: z.number().positive().max(120).optional(),
  /** Tries per batch before it is dropped (and logged). */
  maxAttempts: z.number().int().min(1).max(20).optional(),
  /** Alerts waiting to be sent; past this the oldest are dropped (and counted in the log). */
  maxQueue: z.number().int().min(1).max(100_000).optional(),
  /** Send resolutions too (Alertmanager's send_resolved); default true. */
  sendResolved: z.boolean().optional(),
});
export type AlertWebhookConfig = z.infer<typeof AlertWebhookConfigSchema>;

/** The config file's `alerts` section. */
export const AlertsConfigSchema = z.strictObject({
  /** false: no rules are evaluated (faults still mark GPUs unhealthy). */
  enabled: z.boolean().optional(),
  rules: z.array(AlertRuleConfigSchema).max(256).optional(),
  webhooks: z.array(AlertWebhookConfigSchema).max(16).optional(),
  /** Resolved alerts kept (in the database, for GET /v1/alerts); the oldest go first. */
  keepResolved: z.number().int().min(0).max(100_000).optional(),
});
export type AlertsConfig = z.infer<typeof AlertsConfigSchema>;

export const SilenceMatcherSchema = z.strictObject({ name: z.enum(SILENCE_FIELDS), value: z.string().min(1).max(256) });
export type SilenceMatcher = z.infer<typeof SilenceMatcherSchema>;

/** POST /v1/silences: alerts matching every matcher are silenced until `until` (epoch ms, or RFC 3339). */
export const CreateSilenceSchema = z.strictObject({
  matchers: z.array(SilenceMatcherSchema).min(1, 'needs at least one matcher (a silence of everything is refused)').max(16),
  until: z.union([z.number().int().positive(), z.iso.datetime({ offset: true }).transform((v) => Date.parse(v))]),
  comment: z.string().max(1000).default(''),
});

export const SilenceSchema = z
  .object({
    id: z.string(),
    matchers: z.array(SilenceMatcherSchema),
    until: z.number(),
    comment: z.string(),
    createdBy: z.string(),
    createdAt: z.number(),
    /** `until` is past, or it was removed (DELETE sets `until` to that time). */
    expired: z.boolean(),
  })
  .meta({ id: 'Silence' });
export type Silence = z.infer<typeof SilenceSchema>;

export const SilenceIdParamsSchema = z.strictObject({ id: z.string().regex(/^[0-9a-f]{12}$/, 'must be a silence id (12 hex digits)') });
export const SilencesQuerySchema = z.strictObject({ all: z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true').optional() });

export const AlertEventSchema = z
  .object({
    id: z.string(),
    rule: z.string(),
    severity: z.enum(ALERT_SEVERITIES),
    state: z.enum(['firing', 'resolved']),
    subject: z.object({ gpu: z.number().optional(), uuid: z.string().optional(), task: z.string().optional(), tenant: z.string().optional() }),
    value: z.number(),
    threshold: z.number(),
    startedAt: z.number(),
    resolvedAt: z.number().nullable(),
    summary: z.string(),
    silenced: z.boolean(),
  })
  .meta({ id: 'AlertEvent' });

/** GET /v1/alerts: the firing ones by default; `state=resolved` the kept resolved ones; `since` (epoch ms) those that fired or resolved then or later. */
export const AlertsQuerySchema = z.strictObject({
  state: z.enum(['firing', 'resolved', 'all']).optional(),
  since: z.coerce.number().int().min(0).optional(),
  follow: z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true').optional(),
});

export const AlertsResponseSchema = z.object({ alerts: z.array(AlertEventSchema) });
export const SilencesResponseSchema = z.object({ silences: z.array(SilenceSchema) });

// The wire schema and the contract's type must agree, both ways (checked at compile time).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _alertEventAgrees: Same<z.infer<typeof AlertEventSchema>, AlertEvent> = true;
void _alertEventAgrees;

/** Who made a change, as the audit log names them. */
export interface AlertActor {
  readonly actor: string;
  readonly role: string;
}

/** What the API needs of the daemon's alerts (src/monitor/alerts/service.ts is the one). */
export interface AlertSource {
  /** Firing alerts (silenced as of now), resolved ones kept, or both; `since`: fired or resolved at or after it. Newest change first. */
  list(query: { readonly state?: 'firing' | 'resolved' | 'all' | undefined; readonly since?: number | undefined }): AlertEvent[];
  /** Calls `listener` with each alert as it fires or resolves; returns the unsubscribe. */
  follow(listener: (alert: AlertEvent) => void): () => void;
  /** Active silences; with `all`, those ended in the last week too. */
  silences(all: boolean): Silence[];
  /** Throws GS_ERR_INVALID_ARGUMENT for an `until` already past. */
  addSilence(input: { readonly matchers: readonly SilenceMatcher[]; readonly until: number; readonly comment: string }, by: AlertActor): Silence;
  /** Ends it now; GS_ERR_NOT_FOUND if there is none, GS_ERR_CONFLICT if it had ended. */
  removeSilence(id: string, by: AlertActor): Silence;
}
