/**
 * Which slices are resident on each GPU under memory overcommit (issue 22 items 3-4), decided
 * without doing it. Pure: the shell (residency-shell.ts) gathers what each slice holds and
 * whether it wants in, passes `now`, and performs the swaps this returns.
 *
 * The rules, per GPU (`limit` = the card's memory less the headroom kept for growth):
 * - **Room**: while the resident slices hold more than `limit`, the lowest-priority idle
 *   swappable slice goes out (idle: no launch for `idleMs`); when none is idle, the
 *   lowest-priority active one (better a wait than an out-of-memory error).
 * - **Wants in**: a swapped-out slice whose program launched work (the library holds it and
 *   says so) comes in, highest priority first, then the longest waiting; the first that
 *   cannot get in stops the GPU's pass (no lower-priority one jumps it). Room is made from
 *   idle slices first, then from active ones: those of lower priority at once, those of the
 *   same priority once they have been resident a quantum (time-sharing) or once the waiting
 *   one has waited `maxWaitMs` (the bound). A higher-priority active slice is never swapped
 *   out for a lower one: that wait is reported as over the bound, not cut short.
 * - **Wants room**: a resident slice whose allocation the driver refused for want of memory
 *   (the library waits and says how much) counts at its bytes plus what it asks, and is served
 *   in the same queue as the slices that want in, by the same rules: room from idle slices,
 *   lower-priority active ones, same-priority ones after their quantum or at the bound; never
 *   from the asker itself, never from a higher-priority active slice. Room made: `room` (the
 *   library retries). At the bound without room: `no-room` (the library answers out of memory)
 *   and the wait is reported; a refused asker holds up nobody after it.
 * - A slice the library cannot swap (no control socket: no libgpushare, swap off, or spanning
 *   several GPUs) is never swapped, and counts at the larger
 *   of what it holds and what it was promised, so it never meets a card it was not promised.
 *   Except a slice that cannot be swapped *yet* (`pending`: every CUDA process of it runs the
 *   library, none has made a swappable allocation, which opens its control socket; a task that
 *   has not reached the GPU yet): its region counts all it holds, and an allocation the driver
 *   refuses asks for room (served by the rules below, priorities kept). It counts at what it
 *   holds: counted at its promise, a task starting beside a higher-priority active slice made
 *   the card read over and the room rule swapped that slice out for memory nobody held (the
 *   overcommit-room race, issue 22). Bounded (the shell decides it, residency-shell.ts): only
 *   while the task can still get a socket (swap on for it, its socket path fits, no process said
 *   `<pid>.noswap`) and within PENDING_GRACE_MS of its first GPU memory; a process whose
 *   /proc/PID/maps cannot be read counts as one outside the library (fails closed). After that
 *   it counts at its promise, so its room is never promised to others.
 * - A slice with a swap in flight is left alone and counted as resident; no room is made on
 *   its GPU until it is done.
 */

/** One slice on one GPU, as the shell saw it. Times are epoch milliseconds. */
export interface ResidentSlice {
  readonly id: string;
  readonly gpu: string;
  /** The task's priority (0-1000): higher stays resident. */
  readonly priority: number;
  /** Every CUDA process of the task answers on its control socket. */
  readonly swappable: boolean;
  /** Not swappable yet, but every CUDA process of it runs libgpushare (or none has reached the GPU yet): `bytes` is all it holds. */
  readonly pending: boolean;
  /** Swapped out (its movable bytes are in host memory). */
  readonly out: boolean;
  /** A swap-out or swap-in is in flight. */
  readonly busy: boolean;
  /** Device memory the slice holds when resident (the region's count, which a swap leaves as it is). */
  readonly bytes: number;
  /** Of `bytes`, what a swap moves (the rest stays on the GPU when out). */
  readonly movableBytes: number;
  /** What the slice was promised on this GPU (its request). */
  readonly promisedBytes: number;
  /** The last time its launch count moved (or it started, or came in). */
  readonly lastActiveAt: number;
  /** Since when its program waits to come in (the library said so); null: not waiting. */
  readonly wantsInSince: number | null;
  /** When it last came in or went out. */
  readonly since: number;
  /** Resident, an allocation waits for room (the library said how much, and since when); null: none. */
  readonly wantsRoom: { readonly bytes: number; readonly since: number } | null;
}

export interface ResidencyGpu {
  readonly uuid: string;
  /** The card's memory, bytes. */
  readonly capacityBytes: number;
}

export interface ResidencySettings {
  /** No launch for this long: idle, swapped out first. */
  readonly idleMs: number;
  /** A slice that others wait for keeps the GPU at least this long (time-sharing's turn). */
  readonly quantumMs: number;
  /** A waiting slice displaces same-priority active ones at the latest after this long. */
  readonly maxWaitMs: number;
  /** Bytes kept free on each card for the residents' growth between two looks. */
  readonly headroomBytes: number;
}

/** Why a slice goes out: the card was over (room), another's turn (turn), a wait at its bound (bound), room for an idle one's place (idle). */
export type OutReason = 'room' | 'idle' | 'turn' | 'bound';

export type ResidencyAction =
  | { readonly kind: 'out'; readonly id: string; readonly gpu: string; readonly reason: OutReason; readonly for: string | null }
  | { readonly kind: 'in'; readonly id: string; readonly gpu: string; readonly waitedMs: number }
  /** The room a resident slice waits for is made (after the outs before it): its allocation is retried. */
  | { readonly kind: 'room'; readonly id: string; readonly gpu: string; readonly bytes: number; readonly waitedMs: number }
  /** Its wait for room reached the bound without room: its allocation fails (out of memory). */
  | { readonly kind: 'no-room'; readonly id: string; readonly gpu: string; readonly bytes: number; readonly waitedMs: number; readonly heldBy: readonly string[] };

export interface ResidencyPlan {
  readonly actions: readonly ResidencyAction[];
  /** Waiting slices past their bound, held by higher-priority active residents (reported, not forced). */
  readonly overdue: readonly { readonly id: string; readonly waitedMs: number; readonly heldBy: readonly string[] }[];
  /** GPUs whose unswappable residents alone exceed the limit (nothing here can help). */
  readonly overPinned: readonly string[];
}

/** What a resident slice counts for on its card. */
export function residentBytes(s: ResidentSlice): number {
  // One with a swap in flight counts whole, whichever way it goes.
  if (s.out && !s.busy) return s.bytes - s.movableBytes;
  return s.swappable || s.pending ? s.bytes : Math.max(s.bytes, s.promisedBytes);
}

/** The swaps that keep each GPU within its card and let waiting slices in: see the module's rules. */
export function planResidency(gpus: readonly ResidencyGpu[], slices: readonly ResidentSlice[], settings: ResidencySettings, now: number): ResidencyPlan {
  const actions: ResidencyAction[] = [];
  const overdue: { id: string; waitedMs: number; heldBy: string[] }[] = [];
  const overPinned: string[] = [];
  for (const gpu of gpus) {
    const mine = slices.filter((s) => s.gpu === gpu.uuid);
    const limit = Math.max(0, gpu.capacityBytes - settings.headroomBytes);
    const planned = planGpu(gpu.uuid, limit, mine, settings, now);
    actions.push(...planned.actions);
    overdue.push(...planned.overdue);
    if (planned.overPinned) overPinned.push(gpu.uuid);
  }
  return { actions, overdue, overPinned };
}

const idle = (s: ResidentSlice, settings: ResidencySettings, now: number): boolean => now - s.lastActiveAt >= settings.idleMs;

/** Swap-out order: idle before active, lower priority first, then the longest unused. */
function outOrder(settings: ResidencySettings, now: number) {
  return (a: ResidentSlice, b: ResidentSlice): number =>
    Number(idle(b, settings, now)) - Number(idle(a, settings, now)) || a.priority - b.priority || a.lastActiveAt - b.lastActiveAt || a.id.localeCompare(b.id);
}

function planGpu(gpu: string, limit: number, slices: readonly ResidentSlice[], settings: ResidencySettings, now: number) {
  const actions: ResidencyAction[] = [];
  const overdue: { id: string; waitedMs: number; heldBy: string[] }[] = [];
  let used = slices.reduce((sum, s) => sum + residentBytes(s), 0);
  // Residents that may go out, in the order they would.
  const movable = slices.filter((s) => !s.out && !s.busy && s.swappable && s.movableBytes > 0).sort(outOrder(settings, now));
  const gone = new Set<string>();

  // Room: the card is over its limit. Not while a swap is in flight here: one going out still
  // counts as resident until it is out, and would send a second slice after it. Not a slice
  // waiting for room: it is allocating, and its wait is served below.
  const inFlight = slices.some((s) => s.busy);
  for (const s of movable) {
    if (used <= limit || inFlight) break;
    if (s.wantsRoom !== null) continue;
    actions.push({ kind: 'out', id: s.id, gpu, reason: 'room', for: null });
    gone.add(s.id);
    used -= s.movableBytes;
  }
  const pinned = slices.filter((s) => !s.out && (!s.swappable || s.busy)).reduce((sum, s) => sum + residentBytes(s), 0);
  const overPinned = pinned > limit;

  // Wants in and wants room, one queue: highest priority first, then the longest waiting; the
  // first that cannot be served stops the GPU's pass (an asker refused at its bound does not).
  const since = (s: ResidentSlice): number => (s.out ? s.wantsInSince : s.wantsRoom?.since) ?? now;
  const waiting = slices
    .filter((s) => !s.busy && (s.out ? s.wantsInSince !== null : s.wantsRoom !== null && !gone.has(s.id)))
    .sort((a, b) => b.priority - a.priority || since(a) - since(b) || a.id.localeCompare(b.id));
  const granted = new Set<string>(); // given room in this pass: they allocate now, not to be swapped out
  const refused = new Set<string>(); // answered no-room in this pass: their allocation fails now; not also swapped out in it
  for (const w of waiting) {
    if (gone.has(w.id)) continue; // an asker swapped out for a higher one: it asks again once back in
    const waitedMs = now - since(w);
    const need = w.out ? w.movableBytes : (w.wantsRoom?.bytes ?? 0);
    const displace = (s: ResidentSlice): OutReason | null => {
      if (gone.has(s.id) || s.id === w.id || granted.has(s.id) || refused.has(s.id)) return null;
      if (idle(s, settings, now)) return 'idle';
      if (s.priority < w.priority) return 'turn';
      if (s.priority === w.priority && now - s.since >= settings.quantumMs) return 'turn';
      if (s.priority === w.priority && waitedMs >= settings.maxWaitMs) return 'bound';
      return null;
    };
    const chosen: { s: ResidentSlice; reason: OutReason }[] = [];
    let free = limit - used;
    for (const s of movable) {
      if (free >= need) break;
      const reason = displace(s);
      if (reason === null) continue;
      chosen.push({ s, reason });
      free += s.movableBytes;
    }
    if (free < need) {
      const heldBy = movable.filter((s) => !gone.has(s.id) && s.id !== w.id && !granted.has(s.id) && !refused.has(s.id) && displace(s) === null).map((s) => s.id);
      if (waitedMs >= settings.maxWaitMs) overdue.push({ id: w.id, waitedMs, heldBy });
      if (!w.out && waitedMs >= settings.maxWaitMs) {
        actions.push({ kind: 'no-room', id: w.id, gpu, bytes: need, waitedMs, heldBy });
        refused.add(w.id);
        continue;
      }
      break;
    }
    for (const { s, reason } of chosen) {
      actions.push({ kind: 'out', id: s.id, gpu, reason, for: w.id });
      gone.add(s.id);
      used -= s.movableBytes;
    }
    actions.push(w.out ? { kind: 'in', id: w.id, gpu, waitedMs } : { kind: 'room', id: w.id, gpu, bytes: need, waitedMs });
    if (!w.out) granted.add(w.id);
    used += need;
  }
  return { actions, overdue, overPinned };
}
