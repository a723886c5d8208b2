import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { COMPUTE_POLICIES, COMPUTE_PRIORITIES, LANE_STATES, REGION_KINDS, REGION_LAYOUT, SLOT_STATES, type RegionKind } from './layout.js';

/**
 * Reads a gpushare shared region (native/region/gpushare_region.h) from its bytes. The file
 * is read, not mapped: a snapshot of a live region can mix values from just before and just
 * after a concurrent update, which is fine for monitoring (libgpushare never relies on it).
 */

export interface RegionHeader {
  readonly version: number;
  readonly createdAtMs: number;
  readonly creatorPid: number;
  /** Devices the creator declared limits for (informational). */
  readonly deviceCount: number;
  /** Kinds that count against the memory limit. */
  readonly limitedKinds: readonly RegionKind[];
  readonly ticket: number;
  readonly releaseEpoch: number;
  /** Slots [0, slotsHwm) have ever been used. */
  readonly slotsHwm: number;
}

export interface RegionDeviceLimits {
  readonly device: number;
  /** null: unlimited. */
  readonly memoryLimitBytes: number | null;
  /** null: unlimited. */
  readonly computeLimitPercent: number | null;
  readonly priority: number;
}

export interface RegionReservation {
  readonly lane: number;
  readonly state: 'writing' | 'deciding' | 'granted' | 'waiting';
  readonly device: number;
  readonly kind: RegionKind | `kind${number}`;
  readonly bytes: number;
  readonly ticket: number;
}

export interface RegionSlotDevice {
  readonly device: number;
  /** Committed bytes by kind. */
  readonly bytes: Readonly<Record<RegionKind, number>>;
  /** Committed bytes of the limited kinds: what the limit sees. */
  readonly limitedBytes: number;
  readonly kernelsLaunched: number;
  readonly busyNs: number;
  readonly throttleNs: number;
  /** Recent achieved compute share (about the last second), 0..1. */
  readonly achievedShare: number;
  /** The compute limit, 0..1; 0 when this device is not governed. */
  readonly targetShare: number;
  readonly priority: 'low' | 'normal' | 'high';
  /** How the limit is kept: hard cap, work-conserving share, or none (not governed). */
  readonly policy: 'none' | 'hard' | 'share';
}

/** A process's SM partition on a device (GPUSHARE_ISOLATION=sm-partition). */
export interface RegionSmPartition {
  readonly device: number;
  /** SMs of the green context the process runs in. */
  readonly sms: number;
}

export interface RegionSlot {
  readonly index: number;
  readonly state: 'active' | 'reclaiming';
  readonly pid: number;
  /** Process start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  readonly startTime: number;
  readonly attachedAtMs: number;
  /** Devices with anything counted, in device order. */
  readonly devices: readonly RegionSlotDevice[];
  /** Reservations in flight (not yet committed or cancelled). */
  readonly inFlight: readonly RegionReservation[];
  /** SM partitions it runs in (sm-partition mode), by device; empty: none. */
  readonly smPartitions: readonly RegionSmPartition[];
}

export interface RegionSnapshot {
  readonly header: RegionHeader;
  readonly limits: readonly RegionDeviceLimits[];
  /** Slots held by a process (active) or being reclaimed; free slots are left out. */
  readonly slots: readonly RegionSlot[];
}

const C = REGION_LAYOUT.constants;
const H = REGION_LAYOUT.structs.gs_region_header.fields;
const S = REGION_LAYOUT.structs.gs_region_slot.fields;
const L = REGION_LAYOUT.structs.gs_region_lane;
const D = REGION_LAYOUT.structs.gs_region_slot_dev;
const SLOTS_OFFSET = REGION_LAYOUT.structs.gs_region_file.fields.slots.offset;

function invalid(message: string, details: Record<string, unknown>): GsError {
  return new GsError(ErrorCodes.invalidArgument, `not a readable gpushare region: ${message}`, { details });
}

/** u64 as a number; the region's counters stay far below 2^53 (8 PiB). */
function u64(view: DataView, offset: number): number {
  const v = view.getBigUint64(offset, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`value at offset ${offset} exceeds 2^53`, { offset, value: v.toString() });
  return Number(v);
}

function kindName(k: number): RegionKind | `kind${number}` {
  return REGION_KINDS[k] ?? `kind${k}`;
}

/** Decodes a region's bytes; throws GS_ERR_INVALID_ARGUMENT for anything but a region of this layout version. */
/**
 * `bytes` is the whole region, or (readRegion) its header and the slots below the header's high
 * water mark, from a file of `fileSize` bytes: the slots above it have never been used.
 */
export function decodeRegion(bytes: Uint8Array, fileSize: number = bytes.byteLength): RegionSnapshot {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < C.headerSize) throw invalid(`${bytes.byteLength} bytes is shorter than the header`, { size: bytes.byteLength });
  const magic = `0x${view.getBigUint64(H.magic.offset, true).toString(16).padStart(16, '0')}`;
  if (magic === '0x0000000000000000') throw invalid('not initialised yet (magic 0)', { magic });
  if (magic !== C.magic) throw invalid(`magic ${magic}, expected ${C.magic}`, { magic });
  const version = view.getUint32(H.version.offset, true);
  if (version !== C.version) throw invalid(`layout version ${version}, this reader speaks ${C.version}`, { version });
  const geometry = {
    headerSize: view.getUint32(H.header_size.offset, true),
    slotSize: view.getUint32(H.slot_size.offset, true),
    maxSlots: view.getUint32(H.max_slots.offset, true),
    maxDevices: view.getUint32(H.max_devices.offset, true),
    kinds: view.getUint32(H.kinds.offset, true),
    lanes: view.getUint32(H.lanes_per_slot.offset, true),
    fileSize: u64(view, H.file_size.offset),
  };
  const expected = { headerSize: C.headerSize, slotSize: C.slotSize, maxSlots: C.maxSlots, maxDevices: C.maxDevices, kinds: C.kinds, lanes: C.lanes, fileSize: C.fileSize };
  if (JSON.stringify(geometry) !== JSON.stringify(expected) || fileSize !== C.fileSize || bytes.byteLength < SLOTS_OFFSET) {
    throw invalid(`foreign geometry ${JSON.stringify({ ...geometry, actualSize: fileSize })}`, { geometry, expected });
  }
  const limitedMask = view.getUint32(H.limited_kinds.offset, true);
  const header: RegionHeader = {
    version,
    createdAtMs: u64(view, H.created_at_ms.offset),
    creatorPid: view.getUint32(H.creator_pid.offset, true),
    deviceCount: view.getUint32(H.device_count.offset, true),
    limitedKinds: REGION_KINDS.filter((_, k) => (limitedMask >> k) & 1),
    ticket: u64(view, H.ticket.offset),
    releaseEpoch: u64(view, H.release_epoch.offset),
    slotsHwm: view.getUint32(H.slots_hwm.offset, true),
  };
  const limits: RegionDeviceLimits[] = [];
  for (let d = 0; d < C.maxDevices; d++) {
    const mem = u64(view, H.mem_limit.offset + 8 * d);
    const core = view.getUint32(H.core_limit_pct.offset + 4 * d, true);
    limits.push({ device: d, memoryLimitBytes: mem === 0 ? null : mem, computeLimitPercent: core === 0 ? null : core, priority: view.getInt32(H.priority.offset + 4 * d, true) });
  }
  const slots: RegionSlot[] = [];
  const slotsHere = Math.min(C.maxSlots, Math.floor((bytes.byteLength - SLOTS_OFFSET) / C.slotSize));
  for (let i = 0; i < slotsHere; i++) {
    const base = SLOTS_OFFSET + i * C.slotSize;
    const owner = view.getBigUint64(base + S.owner.offset, true);
    const state = SLOT_STATES[Number(owner >> BigInt(C.ownerStateShift)) as 0 | 1 | 2];
    if (state === undefined || state === 'free') continue;
    slots.push({
      index: i,
      state,
      pid: view.getUint32(base + S.pid.offset, true),
      startTime: u64(view, base + S.start_time.offset),
      attachedAtMs: u64(view, base + S.attached_at_ms.offset),
      devices: slotDevices(view, base),
      inFlight: slotLanes(view, base),
      smPartitions: slotPartitions(view, base),
    });
  }
  return { header, limits, slots };
}

function slotDevices(view: DataView, base: number): RegionSlotDevice[] {
  const out: RegionSlotDevice[] = [];
  for (let d = 0; d < C.maxDevices; d++) {
    const at = base + S.dev.offset + d * D.size;
    const bytes = Object.fromEntries(REGION_KINDS.map((kind, k) => [kind, u64(view, at + D.fields.bytes.offset + 8 * k)])) as Record<RegionKind, number>;
    const dev: RegionSlotDevice = {
      device: d,
      bytes,
      limitedBytes: u64(view, base + S.dev_total.offset + 8 * d),
      kernelsLaunched: u64(view, at + D.fields.kernels_launched.offset),
      busyNs: u64(view, at + D.fields.busy_ns.offset),
      throttleNs: u64(view, at + D.fields.throttle_ns.offset),
      achievedShare: view.getUint32(at + D.fields.achieved_share.offset, true) / C.shareOne,
      targetShare: view.getUint32(at + D.fields.target_share.offset, true) / C.shareOne,
      priority: COMPUTE_PRIORITIES[view.getInt32(at + D.fields.priority.offset, true) as 0 | 1 | 2] ?? 'normal',
      policy: COMPUTE_POLICIES[view.getUint32(at + D.fields.policy.offset, true) as 0 | 1 | 2] ?? 'none',
    };
    const anything =
      dev.limitedBytes + dev.kernelsLaunched + dev.busyNs + dev.throttleNs + dev.achievedShare + dev.targetShare + Object.values(bytes).reduce((a, b) => a + b, 0);
    if (anything > 0) out.push(dev);
  }
  return out;
}

function slotPartitions(view: DataView, base: number): RegionSmPartition[] {
  const out: RegionSmPartition[] = [];
  for (let d = 0; d < C.maxDevices; d++) {
    const sms = view.getUint32(base + S.sm_partition.offset + 4 * d, true);
    if (sms > 0) out.push({ device: d, sms });
  }
  return out;
}

function slotLanes(view: DataView, base: number): RegionReservation[] {
  const out: RegionReservation[] = [];
  for (let l = 0; l < C.lanes; l++) {
    const at = base + S.lanes.offset + l * L.size;
    const meta = view.getBigUint64(at + L.fields.meta.offset, true);
    const state = LANE_STATES[Number(meta & 0xfn) as 0 | 1 | 2 | 3 | 4];
    if (state === undefined || state === 'free') continue;
    out.push({
      lane: l,
      state,
      device: Number((meta >> BigInt(C.laneDevShift)) & 0xfn),
      kind: kindName(Number((meta >> BigInt(C.laneKindShift)) & 0xfn)),
      bytes: u64(view, at + L.fields.bytes.offset),
      ticket: Number(meta >> BigInt(C.laneTicketShift)),
    });
  }
  return out;
}

/**
 * Reads and decodes the region file at path (GS_ERR_NOT_FOUND when it is not there). The file
 * sits in a directory the task owns, so the task may have put anything there: a symlink is not
 * followed, a FIFO never blocks the reader, and no more than a region's size is ever read.
 */
export function readRegion(path: string): RegionSnapshot {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new GsError(ErrorCodes.notFound, `no region file at ${path}`, { cause: err });
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw invalid(`${path} is not a regular file`, { path });
    if (st.size !== C.fileSize) {
      // One byte more than a region: a longer file is reported as such, never read whole.
      const bytes = readUpTo(fd, Buffer.alloc(Math.min(st.size, C.fileSize + 1)), 0);
      return decodeRegion(bytes, bytes.byteLength);
    }
    // The header, then only the slots ever used (a node's regions hold a few processes among
    // thousands of slots): a few KB a read instead of the whole file, every second per task
    // (docs/benchmarks.md, the node agent's sampling). A slot taken between the two reads shows
    // at the next one.
    const head = readUpTo(fd, Buffer.alloc(SLOTS_OFFSET), 0);
    if (head.byteLength < SLOTS_OFFSET) return decodeRegion(head, st.size);
    const hwm = Math.min(head.readUInt32LE(H.slots_hwm.offset), C.maxSlots);
    const bytes = Buffer.alloc(SLOTS_OFFSET + hwm * C.slotSize);
    head.copy(bytes);
    return decodeRegion(readUpTo(fd, bytes, SLOTS_OFFSET), st.size);
  } finally {
    closeSync(fd);
  }
}

/** Fills `into` from the file at its offset `from` on; what was read (shorter at end of file). */
function readUpTo(fd: number, into: Buffer, from: number): Buffer {
  let got = from;
  while (got < into.length) {
    const n = readSync(fd, into, got, into.length - got, got);
    if (n === 0) break;
    got += n;
  }
  return into.subarray(0, got);
}
