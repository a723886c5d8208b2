/**
 * The kubelet plugin's record of the claims it has prepared, on disk so that a restarted agent
 * answers the kubelet as before and frees what it promised. One JSON document, written in place
 * into one of the file's two slots (cdi/slot-file.ts: the other keeps the previous one, and no
 * rename over the file makes ext4 write it back inside a prepare) and not fsynced: it is trusted
 * only within the boot that wrote it. A plain JSON file (written by rename before session 23) is
 * read as before and replaced by the slotted layout at the next write.
 *
 * Why no fsync (docs/kubernetes.md, "State, idempotence, restarts"): a crash of the agent keeps
 * the page cache, and the slots make the old document or the new one visible, never half of one.
 * Only a power loss (or kernel crash) can lose the last writes or tear the file, and that is a
 * new boot: every container is gone, and the kubelet, which never trusts its own "prepared" state
 * across its restart, prepares again every claim of every pod it starts. So a checkpoint written
 * in another boot is dropped at start (its claims hold nothing any more), and a torn one can only
 * be from another boot.
 */
import { readFileSync, statSync } from 'node:fs';
import { uptime } from 'node:os';
import { z } from 'zod';
import { readSlotFile, SlotFile, type SlotRead } from '../cdi/slot-file.js';
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
  return fromRead(path, bootId, readSlotFile(path));
}

function fromRead(path: string, bootId: string, read: SlotRead): CheckpointRead {
  if (read.kind === 'absent') return { claims: [] };
  if (read.kind === 'torn') {
    // Both slots torn: only the end of the boot that wrote them can do that (a killed write
    // tears one slot); in this boot it is a bug or a hand, and is said.
    if (writtenBeforeThisBoot(path)) return { claims: [], dropped: 'it was torn by the end of the boot that wrote it' };
    throw new Error(`${path} is not a gpushare DRA checkpoint of version ${CHECKPOINT_VERSION}: ${read.why}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(read.text);
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

function text(bootId: string, claims: Iterable<PreparedClaim>): string {
  return `${JSON.stringify({ version: CHECKPOINT_VERSION, bootId, claims: [...claims] })}\n`;
}

/** The plugin's checkpoint, kept open: read once at start, then written in place (not fsynced: see the top of this file). */
export class CheckpointFile {
  private readonly file: SlotFile;

  constructor(readonly path: string, private readonly bootId: string) {
    this.file = new SlotFile(path);
  }

  read(): CheckpointRead {
    return fromRead(this.path, this.bootId, this.file.read());
  }

  /** Replaces the recorded claims with `claims`; throws (the file keeping the previous claims) on a failed write. */
  write(claims: Iterable<PreparedClaim>): void {
    this.file.write(text(this.bootId, claims));
  }

  close(): void {
    this.file.close();
  }
}

/** Replaces the checkpoint at `path` with `claims`, for boot `bootId` (a writer of its own, closed after). */
export function writeCheckpoint(path: string, bootId: string, claims: Iterable<PreparedClaim>): void {
  const f = new SlotFile(path);
  f.read();
  try {
    f.write(text(bootId, claims));
  } finally {
    f.close();
  }
}

function writtenBeforeThisBoot(path: string): boolean {
  return statSync(path).mtimeMs < Date.now() - uptime() * 1000;
}
