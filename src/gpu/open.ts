import { existsSync, readFileSync } from 'node:fs';
import { describeIssues, ErrorCodes, GsError } from '../domain/index.js';
import type { BackendKind, GpuBackend } from './backend.js';
import { NvmlBackend } from './nvml/backend.js';
import { SimulatedBackend } from './simulated/backend.js';
import { parseFleetSpec } from './simulated/spec.js';

import { BACKEND_CHOICES, type BackendChoice } from './choices.js';

export { BACKEND_CHOICES, type BackendChoice };

/** The fleet simulated when no NVIDIA driver is found and nobody said which. */
export const DEFAULT_SIMULATED_FLEET = '1xH100-80GB';

export interface OpenBackendOptions {
  readonly backend?: string | undefined;
  /** A fleet spec (`2xH100-80GB,1xA100-40GB`) or the path of a file holding one (text or JSON). */
  readonly simulate?: string | undefined;
  readonly nvmlPath?: string | undefined;
  readonly clock?: () => number;
}

export interface OpenedBackend {
  readonly backend: GpuBackend;
  /** Set when the choice was not what a user would assume (no driver: simulating instead). */
  readonly notice: string | null;
}

/**
 * Picks the backend: NVML when asked or when it works, otherwise the simulated fleet, and says so.
 * `--simulate` alone implies the simulated backend.
 */
export function openBackend(options: OpenBackendOptions = {}): OpenedBackend {
  const choice = parseChoice(options.backend ?? (options.simulate !== undefined ? 'simulated' : 'auto'));
  if (choice === 'nvml' && options.simulate !== undefined) {
    throw new GsError(ErrorCodes.invalidArgument, '--simulate describes a simulated fleet; it cannot be combined with --backend nvml');
  }
  if (choice === 'simulated') return { backend: openSimulated(options.simulate ?? DEFAULT_SIMULATED_FLEET, options.clock), notice: null };
  try {
    return { backend: new NvmlBackend({ path: options.nvmlPath }), notice: null };
  } catch (err) {
    if (choice === 'nvml' || !(err instanceof GsError) || err.code !== ErrorCodes.nvmlUnavailable) throw err;
    const backend = openSimulated(DEFAULT_SIMULATED_FLEET, options.clock);
    return {
      backend,
      notice: `No NVIDIA driver found (${err.message}). Showing SIMULATED GPUs (${DEFAULT_SIMULATED_FLEET}); use --backend nvml to require real ones, or --simulate to describe another fleet.`,
    };
  }
}

function parseChoice(text: string): BackendKind | 'auto' {
  const value = text.trim().toLowerCase();
  if ((BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new GsError(ErrorCodes.invalidArgument, `unknown backend "${text}"; expected one of ${BACKEND_CHOICES.join(', ')}`);
}

function openSimulated(specOrFile: string, clock?: () => number): SimulatedBackend {
  const spec = existsSync(specOrFile) ? readFleetFile(specOrFile) : specOrFile;
  const parsed = parseFleetSpec(spec);
  if (!parsed.ok) throw new GsError(ErrorCodes.invalidArgument, `invalid simulated fleet: ${describeIssues(parsed.issues)}`, { details: { issues: parsed.issues } });
  return new SimulatedBackend({ label: spec, gpus: parsed.value, ...(clock ? { clock } : {}) });
}

/**
 * A fleet file is either the spec as text (items separated by commas or lines, `#` comments) or
 * JSON: `{"gpus": [{"model": "H100-80GB", "count": 2, "mig": ["3g.40gb"]}]}`.
 */
function readFleetFile(path: string): string {
  const text = readFileSync(path, 'utf8');
  if (!text.trimStart().startsWith('{')) {
    return text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean).join(',');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new GsError(ErrorCodes.invalidArgument, `fleet file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const gpus = (json as { gpus?: unknown }).gpus;
  if (!Array.isArray(gpus)) throw new GsError(ErrorCodes.invalidArgument, `fleet file ${path} needs a "gpus" array of {"model", "count", "mig"}`);
  return gpus
    .map((g: { model?: unknown; count?: unknown; mig?: unknown }, i) => {
      if (typeof g?.model !== 'string') throw new GsError(ErrorCodes.invalidArgument, `fleet file ${path}: gpus[${i}].model must be a string such as "H100-80GB"`);
      const count = g.count === undefined ? 1 : g.count;
      const mig = Array.isArray(g.mig) && g.mig.length > 0 ? `:mig=${g.mig.join('+')}` : '';
      return `${String(count)}x${g.model}${mig}`;
    })
    .join(',');
}
