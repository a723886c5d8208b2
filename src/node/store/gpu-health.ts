import type { GpuCordon, GpuFaultInfo } from '../../contract/gpus.js';
import type { Db } from './db.js';

export type { GpuCordon } from '../../contract/gpus.js';

/** An XID or uncorrectable ECC fault seen on the GPU, not yet recovered or cleared. */
export interface GpuFault extends GpuFaultInfo {
  /** When the GPU was first seen lost after the fault (a reset under way); null until then. */
  readonly lostAt: number | null;
}

/** One GPU's row: a GPU with neither a cordon nor a fault has none. */
export interface GpuHealthRecord {
  readonly uuid: string;
  readonly cordon: GpuCordon | null;
  readonly fault: GpuFault | null;
}

interface Row {
  uuid: string;
  cordoned_by: string | null;
  cordoned_at: number | null;
  cordon_note: string | null;
  fault_kind: string | null;
  fault_code: number | null;
  fault_at: number | null;
  fault_lost_at: number | null;
}

/** The gpu_health table (migration 8). */
export class GpuHealthStore {
  private readonly all;
  private readonly upsert;
  private readonly remove;

  constructor(db: Db) {
    this.all = db.prepare('SELECT * FROM gpu_health ORDER BY uuid');
    this.upsert = db.prepare(`INSERT INTO gpu_health (uuid, cordoned_by, cordoned_at, cordon_note, fault_kind, fault_code, fault_at, fault_lost_at)
      VALUES (@uuid, @cordonedBy, @cordonedAt, @cordonNote, @faultKind, @faultCode, @faultAt, @faultLostAt)
      ON CONFLICT (uuid) DO UPDATE SET cordoned_by = excluded.cordoned_by, cordoned_at = excluded.cordoned_at, cordon_note = excluded.cordon_note,
        fault_kind = excluded.fault_kind, fault_code = excluded.fault_code, fault_at = excluded.fault_at, fault_lost_at = excluded.fault_lost_at`);
    this.remove = db.prepare('DELETE FROM gpu_health WHERE uuid = ?');
  }

  list(): GpuHealthRecord[] {
    return (this.all.all() as Row[]).map(fromRow);
  }

  /** Writes the GPU's record; one with neither a cordon nor a fault is removed. */
  put(r: GpuHealthRecord): void {
    if (r.cordon === null && r.fault === null) {
      this.remove.run(r.uuid);
      return;
    }
    this.upsert.run({
      uuid: r.uuid,
      cordonedBy: r.cordon?.by ?? null,
      cordonedAt: r.cordon?.at ?? null,
      cordonNote: r.cordon?.note ?? null,
      faultKind: r.fault?.kind ?? null,
      faultCode: r.fault?.code ?? null,
      faultAt: r.fault?.at ?? null,
      faultLostAt: r.fault?.lostAt ?? null,
    });
  }
}

function fromRow(r: Row): GpuHealthRecord {
  const cordon = r.cordoned_by === null ? null : { by: r.cordoned_by, at: r.cordoned_at ?? 0, note: r.cordon_note };
  const kind: GpuFault['kind'] | null = r.fault_kind === 'xid' || r.fault_kind === 'ecc' ? r.fault_kind : null;
  const fault: GpuFault | null = kind === null ? null : { kind, code: r.fault_code, at: r.fault_at ?? 0, lostAt: r.fault_lost_at };
  return { uuid: r.uuid, cordon, fault };
}
