/**
 * What a new config file (SIGHUP) changes in a running daemon: the parts that are safe to swap
 * while tasks run (tenants' quotas, tokens, the log level, the TLS files' contents, alert rules
 * and webhooks, history's retention) and the keys
 * that need a restart, which are named and left as they are. Pure: serve.ts applies the result.
 */
import { isDeepStrictEqual } from 'node:util';
import type { DaemonConfig } from './config.js';

/** The config keys a reload applies. */
export const RELOADABLE_KEYS = ['tenants', 'tokens', 'logLevel', 'tls', 'alerts', 'historyRetention'] as const;

export interface ReloadPlan {
  /** The reloadable keys whose value changed (tls: whenever TLS stays on: the files may be new under the same paths). */
  readonly apply: readonly (typeof RELOADABLE_KEYS)[number][];
  /** Keys that changed but take a restart; the running daemon keeps the old value. */
  readonly ignored: readonly string[];
}

/**
 * Compares the running config with the new one, key by key. A tenant's `runAs` is the sandbox's
 * (users are fixed when the daemon starts): a new or changed one is ignored as `tenants.<name>.runAs`.
 */
export function planReload(running: DaemonConfig, next: DaemonConfig): ReloadPlan {
  const apply: (typeof RELOADABLE_KEYS)[number][] = [];
  const ignored: string[] = [];
  for (const key of Object.keys(next) as (keyof DaemonConfig)[]) {
    if (key === 'configFile') continue;
    const changed = !isDeepStrictEqual(running[key], next[key]);
    if (key === 'tls') {
      // New certificate files (or the same paths, renewed in place) swap into the running
      // listeners; turning TLS or client certificates on or off changes the listeners themselves.
      const same = running.tls !== null && next.tls !== null && (running.tls.clientCa === null) === (next.tls.clientCa === null);
      if (same) apply.push('tls');
      else if (changed) ignored.push('tls');
    } else if ((RELOADABLE_KEYS as readonly string[]).includes(key)) {
      if (changed) apply.push(key as (typeof RELOADABLE_KEYS)[number]);
    } else if (changed) ignored.push(key);
  }
  const runAsBefore = new Map(running.tenants.map((t) => [t.name, t.runAs]));
  for (const t of next.tenants) {
    if (!isDeepStrictEqual(runAsBefore.get(t.name), t.runAs)) ignored.push(`tenants.${t.name}.runAs`);
  }
  return { apply, ignored };
}
