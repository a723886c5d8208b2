/**
 * `gpushare k8s downgrade-state`: the node agent's slotted state files (cdi/slot-file.ts: the
 * device plugin's ledger, the DRA plugin's checkpoint) rewritten in the plain layout that
 * gpushare before them (base/session23 and earlier) reads, so an older agent installed next
 * starts with its claims and served containers (docs/kubernetes.md, "State, idempotence,
 * restarts"). Without it an older agent refuses the slotted file as "not JSON", naming it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writePlainLayout } from '../cdi/slot-file.js';
import { DEFAULT_STATE_DIR } from '../deviceplugin/plugin.js';
import { DRIVER_NAME } from '../dra/names.js';
import { AGENT_DEFAULTS } from './config.js';

/** The state files at their default places: the DRA plugin's checkpoint, the device plugin's ledger. */
export const DEFAULT_STATE_FILES = [join(AGENT_DEFAULTS.pluginDir, DRIVER_NAME, 'checkpoint.json'), join(DEFAULT_STATE_DIR, 'ledger.json')] as const;

/**
 * Rewrites each file (none named: those of `defaults` that exist) and says what it did,
 * one line each. Stops at the first that cannot be (a running agent holds it, torn, absent),
 * throwing its error; the files before it stay rewritten (rewriting one again is harmless).
 */
export function downgradeState(files: readonly string[], defaults: readonly string[] = DEFAULT_STATE_FILES): string[] {
  const chosen = files.length > 0 ? files : defaults.filter((f) => existsSync(f));
  if (chosen.length === 0) return [`no state file at ${defaults.join(' or ')}: nothing to do`];
  return chosen.map((f) => (writePlainLayout(f) === 'written' ? `${f}: rewritten in the plain layout` : `${f}: in the plain layout already, left as it is`));
}
