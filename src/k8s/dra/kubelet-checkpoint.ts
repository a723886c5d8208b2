/**
 * The kubelet plugin's record of the claims it has prepared, on disk so that a restarted agent
 * answers the kubelet as before and frees what it promised. One JSON file, replaced atomically.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../cdi/write.js';
import type { PreparedClaim } from './prepare.js';

const CHECKPOINT_VERSION = 1;

const device = z.object({
  request: z.string(), pool: z.string(), device: z.string(), shareId: z.string().nullable(),
  gpuUuid: z.string(), gpuIndex: z.number().int(), gpuMemoryBytes: z.number(), deviceNode: z.string(), memoryBytes: z.number(), cores: z.number(),
});
const claim = z.object({
  uid: z.string(), namespace: z.string(), name: z.string(), devices: z.array(device),
  config: z.object({ isolation: z.enum(['time-slice', 'sm-partition']), priority: z.number(), computePolicy: z.enum(['hard', 'share']) }),
  smRanges: z.array(z.object({ gpuUuid: z.string(), offset: z.number().int(), count: z.number().int() })),
});
const file = z.object({ version: z.literal(CHECKPOINT_VERSION), claims: z.array(claim) });

/** The prepared claims recorded at `path` (none when the file does not exist); a corrupt file is an error saying so. */
export function readCheckpoint(path: string): PreparedClaim[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const parsed = file.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${path} is not a gpushare DRA checkpoint of version ${CHECKPOINT_VERSION}: ${parsed.error.issues[0]?.message ?? ''}`);
  return parsed.data.claims;
}

/** Replaces the checkpoint with `claims`. */
export function writeCheckpoint(path: string, claims: Iterable<PreparedClaim>): void {
  writeFileAtomic(path, `${JSON.stringify({ version: CHECKPOINT_VERSION, claims: [...claims] }, null, 1)}\n`, 0o600);
}
