import { NVML, NVML_DEVICE_UUID_V2_BUFFER_SIZE, NVML_EVENT_TYPE_XID_CRITICAL_ERROR, UNAVAILABLE_CODES } from './codes.js';
import { cString, toBigInt, type NvmlDevice, type NvmlLibrary } from './library.js';

/** At most this many events are drained per reading: a GPU in an XID storm must not stall a sample. */
const MAX_EVENTS_PER_POLL = 256;

/** What the watch knows of one GPU: null fields when XID events cannot be watched there. */
export interface XidFigures {
  readonly xidErrors: number | null;
  readonly lastXid: number | null;
}

const UNWATCHED: XidFigures = { xidErrors: null, lastXid: null };

/**
 * Critical XID errors through an NVML event set, polled without waiting (timeout 0) each time
 * the GPUs are read: NVML queues the events between readings, so none is missed while the
 * daemon is not asking. Counts start when the backend opens (NVML keeps no history of XIDs).
 * A driver or GPU that cannot deliver them (no event API, not supported, no permission) leaves
 * that GPU's figures null rather than a reassuring 0.
 */
export class XidWatch {
  private set: unknown = null;
  /** The set could not be made: nothing is watched, ever (asked once). */
  private unavailable = false;
  private readonly byUuid = new Map<string, { count: number; last: number | null }>();
  /** UUIDs whose registration was refused, so it is not asked again every second. */
  private readonly refused = new Set<string>();

  constructor(
    private readonly nvml: Pick<NvmlLibrary, 'call'>,
    /** Throws the backend's error for a return code that is a failure (called with failures only). */
    private readonly check: (rc: number, fn: string) => true,
  ) {}

  /** Registers GPUs not seen before, then drains the events queued since the last poll. */
  poll(devices: readonly { readonly handle: NvmlDevice; readonly uuid: string }[]): void {
    if (!this.ensureSet()) return;
    for (const { handle, uuid } of devices) {
      if (!this.byUuid.has(uuid) && !this.refused.has(uuid)) this.register(handle, uuid);
    }
    if (this.byUuid.size === 0) return;
    for (let i = 0; i < MAX_EVENTS_PER_POLL; i += 1) {
      const data = {} as { device?: NvmlDevice; eventType?: unknown; eventData?: unknown };
      const rc = this.nvml.call('nvmlEventSetWait_v2', this.set, data, 0);
      if (rc === NVML.TIMEOUT) return;
      // GPU_IS_LOST here names no GPU: the GPUs' own readings say which one is lost.
      if (rc === NVML.GPU_IS_LOST || UNAVAILABLE_CODES.has(rc)) return;
      if (rc !== NVML.SUCCESS) this.check(rc, 'nvmlEventSetWait_v2');
      if ((toBigInt(data.eventType ?? 0) & NVML_EVENT_TYPE_XID_CRITICAL_ERROR) === 0n) continue;
      const watched = this.byUuid.get(this.uuidOf(data.device));
      if (watched === undefined) continue;
      watched.count += 1;
      watched.last = Number(toBigInt(data.eventData ?? 0));
    }
  }

  of(uuid: string): XidFigures {
    const w = this.byUuid.get(uuid);
    return w === undefined ? UNWATCHED : { xidErrors: w.count, lastXid: w.last };
  }

  close(): void {
    if (this.set !== null) this.nvml.call('nvmlEventSetFree', this.set);
    this.set = null;
    this.unavailable = true;
  }

  private ensureSet(): boolean {
    if (this.set !== null) return true;
    if (this.unavailable) return false;
    const out: unknown[] = [null];
    const rc = this.nvml.call('nvmlEventSetCreate', out);
    if (rc !== NVML.SUCCESS) {
      if (!UNAVAILABLE_CODES.has(rc)) this.check(rc, 'nvmlEventSetCreate');
      this.unavailable = true;
      return false;
    }
    this.set = out[0];
    return true;
  }

  private register(handle: NvmlDevice, uuid: string): void {
    const supported: unknown[] = [0];
    let rc = this.nvml.call('nvmlDeviceGetSupportedEventTypes', handle, supported);
    if (rc === NVML.SUCCESS && (toBigInt(supported[0]) & NVML_EVENT_TYPE_XID_CRITICAL_ERROR) !== 0n) {
      rc = this.nvml.call('nvmlDeviceRegisterEvents', handle, NVML_EVENT_TYPE_XID_CRITICAL_ERROR, this.set);
      if (rc === NVML.SUCCESS) {
        this.byUuid.set(uuid, { count: 0, last: null });
        return;
      }
    }
    if (rc !== NVML.SUCCESS && !UNAVAILABLE_CODES.has(rc) && rc !== NVML.GPU_IS_LOST) this.check(rc, 'nvmlDeviceRegisterEvents');
    this.refused.add(uuid);
  }

  private uuidOf(device: NvmlDevice | undefined): string {
    if (device === undefined || device === null) return '';
    const buf = Buffer.alloc(NVML_DEVICE_UUID_V2_BUFFER_SIZE);
    return this.nvml.call('nvmlDeviceGetUUID', device, buf, buf.length) === NVML.SUCCESS ? cString(buf) : '';
  }
}
