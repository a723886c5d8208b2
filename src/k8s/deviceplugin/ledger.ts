/**
 * The node's ledger of served containers: which pod container each Allocate was for, on which
 * GPUs and replica IDs. Allocate consults it so a decision is consumed once; PreStartContainer
 * finds a container's allocation by its IDs; it survives a restart of the plugin (one file,
 * written in place into one of two slots, cdi/slot-file.ts: a killed write leaves the previous
 * ledger, and no rename over the file makes ext4 write it back inside the call). Not fsynced: a flush costs milliseconds on a node's disk, over
 * the Allocate budget, and what it would guard (a power loss) also restarts every container
 * without a new Allocate; the pod's `gpushare.io/allocated` annotation records the same
 * entries in the API server for that case.
 */
import { z } from 'zod';
import { SlotFile } from '../cdi/slot-file.js';

const entrySchema = z.strictObject({
  key: z.string(),
  podUid: z.string(),
  namespace: z.string(),
  pod: z.string(),
  index: z.int().min(0),
  container: z.string(),
  gpus: z.array(z.string()),
  deviceIds: z.array(z.string()),
  atMs: z.int().min(0),
  /** Whether the pod's gpushare.io/allocated annotation records it yet. */
  annotated: z.boolean(),
});
const fileSchema = z.strictObject({ v: z.literal(1), entries: z.array(entrySchema) });

export type LedgerEntry = z.infer<typeof entrySchema>;

const HEAD = Buffer.from('{"v":1,"entries":[');
const COMMA = Buffer.from(',');
const TAIL = Buffer.from(']}');

export class Ledger {
  private readonly entries = new Map<string, LedgerEntry>();
  /**
   * Each entry's JSON, kept beside it (same keys, same order): a write joins them instead of
   * serializing the whole ledger again, on the Allocate's path (80 served containers: 0.3-0.4 ms
   * a write on the development VM before session 25, most of it JSON.stringify). Kept as UTF-8
   * bytes since session 26, which the slot file copies one after another: before, each write
   * made the whole ledger's string twice (the join, then its flat copy to encode it), 11% of the
   * plugin's garbage in the Allocate bench.
   */
  private readonly texts = new Map<string, Buffer>();
  /** Entries changed in memory since the last write (annotated marks, which wait for the next write). */
  private dirty = false;

  private readonly file: SlotFile;

  /**
   * Reads the file (absent: empty) and holds its writer's lock until close(): a second agent on
   * the file is refused (GS_ERR_CONFLICT). A file that is not a ledger is an error naming it:
   * served containers must not be forgotten silently.
   */
  constructor(path: string) {
    this.file = new SlotFile(path);
    try {
      this.load(path);
    } catch (e) {
      this.file.close(); // its lock too
      throw e;
    }
  }

  private load(path: string): void {
    const read = this.file.read();
    if (read.kind === 'absent') return;
    if (read.kind === 'torn') throw new Error(`the device plugin's ledger ${path} is torn (${read.why}); move it aside to start with an empty one`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(read.text);
    } catch (e) {
      throw new Error(`the device plugin's ledger ${path} is not JSON (${(e as Error).message}); move it aside to start with an empty one`);
    }
    const r = fileSchema.safeParse(parsed);
    if (!r.success) throw new Error(`the device plugin's ledger ${path} is not a ledger: ${r.error.issues[0]?.path.join('.') ?? ''} ${r.error.issues[0]?.message ?? ''}`);
    for (const e of r.data.entries) this.put(e);
  }

  private put(e: LedgerEntry): void {
    this.entries.set(e.key, e);
    this.texts.set(e.key, Buffer.from(JSON.stringify(e), 'utf8'));
  }

  private drop(key: string): void {
    this.entries.delete(key);
    this.texts.delete(key);
  }

  /** Writes what waits in memory (annotated marks), then lets the file go (the plugin stops); a later write opens it again. */
  close(): void {
    try {
      if (this.dirty) this.save();
    } catch {
      // Only marks waited (the entries themselves were written by add): losing them makes the
      // next start look at the pods again, which finds them recorded.
    } finally {
      this.file.close();
    }
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  all(): LedgerEntry[] {
    return [...this.entries.values()];
  }

  /** Records entries and writes the file; on a failed write nothing is recorded (and the error is thrown). */
  add(added: readonly LedgerEntry[]): void {
    for (const e of added) this.put(e);
    try {
      this.save();
    } catch (err) {
      for (const e of added) this.drop(e.key);
      throw err;
    }
  }

  /**
   * Marks entries as recorded on their pod, in memory: the file gets the marks with its next
   * write (the next Allocate, a deleted pod, close). Not written now: this ran right after each
   * Allocate's patch, a second write of the whole ledger a pod on the plugin's loop while the
   * kubelet's next call waited. A mark lost with a crash only makes the next start record the
   * entry on its pod again, which finds it there and patches nothing (NodePods.recordAllocated).
   */
  markAnnotated(keys: readonly string[]): void {
    for (const k of keys) {
      const e = this.entries.get(k);
      if (e === undefined || e.annotated) continue;
      this.put({ ...e, annotated: true });
      this.dirty = true;
    }
  }

  /** Forgets a pod's containers (the pod is gone); the entries removed. */
  removePods(podUids: ReadonlySet<string>): LedgerEntry[] {
    const gone = [...this.entries.values()].filter((e) => podUids.has(e.podUid));
    if (gone.length === 0) return [];
    for (const e of gone) this.drop(e.key);
    this.save();
    return gone;
  }

  /** The most recent entry whose replica IDs are exactly `ids` (the kubelet never gives one ID to two live containers). */
  byDeviceIds(ids: readonly string[]): LedgerEntry | undefined {
    const want = [...ids].sort().join(',');
    let best: LedgerEntry | undefined;
    for (const e of this.entries.values()) if ([...e.deviceIds].sort().join(',') === want && (best === undefined || e.atMs >= best.atMs)) best = e;
    return best;
  }

  /** The whole ledger, `{"v":1,"entries":[...]}` as JSON.stringify makes it, from the entries' kept texts. */
  private save(): void {
    const parts: Buffer[] = [HEAD];
    for (const t of this.texts.values()) {
      if (parts.length > 1) parts.push(COMMA);
      parts.push(t);
    }
    parts.push(TAIL);
    this.file.write(parts);
    this.dirty = false;
  }
}
