/**
 * The kubelet plugin's record of the claims it has prepared, on disk so that a restarted agent
 * answers the kubelet as before and frees what it promised. One JSON file, replaced atomically
 * (temp + rename) and not fsynced: it is trusted only within the boot that wrote it.
 *
 * Why no fsync (docs/kubernetes.md, "State, idempotence, restarts"): a crash of the agent keeps
 * the page cache, and the rename makes the old file or the new one visible, never half of one.
 * Only a power loss (or kernel crash) can lose the last writes or tear the file, and that is a
 * new boot: every container is gone, and the kubelet, which never trusts its own "prepared" state
 * across its restart, prepares again every claim of every pod it starts. So a checkpoint written
 * in another boot is dropped at start (its claims hold nothing any more), and a torn one can only
 * be from another boot.
 */
import { readFileSync, statSync } from 'node:fs';
import { uptime } from 'node:os';
import { z } from 'zod';
import { writeFileAtomic } from '../cdi/write.js';
import type { PreparedClaim } from './prepare.js';

const CHECKPOINT_VERSION = 2;

const device = z.object({
  request: z.string(), pool: z.string(), device: z.string(), shareId: z.string().nullable(),
  gpuUuid: z.string(), gpuIndex: z.number().int(), gpuMemoryBytes: z.number(), deviceNode: z.string(), memoryBytes: z.number(), cores: z.number(),
});
const claim = z.object({
  uid: z.string(), namespace: z.string(), name: z.string(), devices: z.array(device),
  config: z.object({ isolation: z.enum(['time-slice', 'sm-partition']), priority: z.number(), computePolicy: z.enum(['hard', 'share']) }),
  smRanges: z.array(z.object({ gpuUuid: z.string(), offset: z.number().int(), count: z.number().int() })),
});
const file = z.object({ version: z.literal(CHECKPOINT_VERSION), bootId: z.string().min(1), claims: z.array(claim) });

/** The machine's boot, as the kernel names it (a new value on every boot). */
export function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // No procfs: the boot's start time to the second names it as well.
    return `boot-at-${Math.round(Date.now() / 1000 - uptime())}`;
  }
}

/** What readCheckpoint found: the claims to hold, and why none were taken where it dropped a file. */
export interface CheckpointRead {
  readonly claims: PreparedClaim[];
  /** Set when the file was from another boot (its claims died with that boot's containers). */
  readonly dropped?: string;
}

/**
 * The prepared claims recorded at `path` for boot `bootId` (none when the file does not exist or
 * was written in another boot); a corrupt file of this boot is an error saying so.
 */
export function readCheckpoint(path: string, bootId: string): CheckpointRead {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { claims: [] };
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    // Not JSON: torn by a power loss (this boot's writes are whole: the page cache serves them)
    // when the file is older than this boot; anything else is a bug or a hand, and is said.
    if (writtenBeforeThisBoot(path)) return { claims: [], dropped: 'it was torn by the end of the boot that wrote it' };
    throw new Error(`${path} is not a gpushare DRA checkpoint of version ${CHECKPOINT_VERSION}: ${(e as Error).message}`);
  }
  const parsed = file.safeParse(json);
  if (!parsed.success) throw new Error(`${path} is not a gpushare DRA checkpoint of version ${CHECKPOINT_VERSION}: ${parsed.error.issues[0]?.message ?? ''}`);
  if (parsed.data.bootId !== bootId) return { claims: [], dropped: `it was written in boot ${parsed.data.bootId}, this is ${bootId}` };
  return { claims: parsed.data.claims };
}

/** Replaces the checkpoint with `claims`, for boot `bootId` (not fsynced: see the top of this file). */
export function writeCheckpoint(path: string, bootId: string, claims: Iterable<PreparedClaim>): void {
  writeFileAtomic(path, `${JSON.stringify({ version: CHECKPOINT_VERSION, bootId, claims: [...claims] })}\n`, 0o600, false);
}

function writtenBeforeThisBoot(path: string): boolean {
  return statSync(path).mtimeMs < Date.now() - uptime() * 1000;
}
