/**
 * What the CUDA driver makes of each GPU's SMs as green-context groups, for SM-partition
 * placement: real GPUs through gpushare-smprobe (native/exec/smprobe.c, run once at start; it
 * opens libcuda and creates no context), simulated GPUs from their model. Partitions side by
 * side must fit in the SMs the driver groups: on the lent H200 that is 120 of 132 (15 groups
 * of 8), so two 64-SM halves do not both fit, and placing the second at SM 64 made libgpushare
 * refuse it at start. A GPU the probe cannot describe is left out of the map: placement then
 * assumes every whole group (domain/smpartition.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { SmGroups } from '../domain/index.js';
import type { GpuBackend } from '../gpu/backend.js';
import { simulatedSmGroupable } from '../gpu/simulated/catalog.js';

const ProbeOutput = z.object({
  error: z.string().optional(),
  devices: z.array(z.object({
    index: z.number().int(),
    uuid: z.string().optional(),
    sms: z.number().int().positive().optional(),
    min: z.number().int().positive().optional(),
    step: z.number().int().positive().optional(),
    groupable: z.number().int().nonnegative().optional(),
    error: z.string().optional(),
  })).optional(),
});

export interface SmGroupsReading {
  /** By GPU UUID (`GPU-...`), the GPUs the driver described. */
  readonly groups: ReadonlyMap<string, SmGroups>;
  /** Why some or all GPUs are not described (no driver, a GPU it cannot split); empty when none. */
  readonly problems: readonly string[];
}

/** Parses the probe's JSON (exported for tests). */
export function parseProbe(text: string): SmGroupsReading {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { groups: new Map(), problems: [`gpushare-smprobe printed no JSON: ${text.slice(0, 200)}`] };
  }
  const parsed = ProbeOutput.safeParse(json);
  if (!parsed.success) return { groups: new Map(), problems: [`gpushare-smprobe printed unexpected JSON: ${parsed.error.issues[0]?.message ?? ''}`] };
  const groups = new Map<string, SmGroups>();
  const problems: string[] = parsed.data.error ? [parsed.data.error] : [];
  for (const d of parsed.data.devices ?? []) {
    if (d.uuid !== undefined && d.min !== undefined && d.step !== undefined && d.groupable !== undefined) groups.set(d.uuid, { min: d.min, step: d.step, groupable: d.groupable });
    else if (d.error) problems.push(`CUDA device ${d.index}${d.uuid ? ` (${d.uuid})` : ''}: ${d.error}`);
  }
  return { groups, problems };
}

/** Runs the probe (at most 20 s: cuInit on a machine with many GPUs takes seconds). */
export function probeSmGroups(probePath: string, env: NodeJS.ProcessEnv): Promise<SmGroupsReading> {
  if (!existsSync(probePath)) return Promise.resolve({ groups: new Map(), problems: [`${probePath} is missing (npm run build)`] });
  return new Promise((resolve) => {
    execFile(probePath, [], { env, timeout: 20_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      const reading = parseProbe(stdout);
      const failed = err !== null && reading.groups.size === 0 && reading.problems.length === 0;
      resolve(failed ? { groups: reading.groups, problems: [`gpushare-smprobe failed: ${err.message}`] } : reading);
    });
  });
}

/** The groups of the backend's GPUs that can be partitioned (compute capability 9.0 and newer). */
export async function readSmGroups(backend: GpuBackend, probePath: string, env: NodeJS.ProcessEnv): Promise<SmGroupsReading> {
  const hopper = backend.gpus().filter((g) => Number(g.computeCapability?.split('.')[0]) >= 9);
  if (hopper.length === 0) return { groups: new Map(), problems: [] };
  if (backend.kind === 'simulated') {
    const groups = new Map<string, SmGroups>();
    for (const g of hopper) {
      const groupable = simulatedSmGroupable(g.name);
      if (groupable !== null) groups.set(g.uuid, { min: 8, step: 8, groupable });
    }
    return { groups, problems: [] };
  }
  return probeSmGroups(probePath, env);
}
