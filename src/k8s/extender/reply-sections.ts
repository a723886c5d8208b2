/**
 * One part of a kept reply (reply-bytes.ts), position by position: the bytes of the entries
 * of a node list's positions in order (each entry starts with a comma; a position may have
 * none), and where each position's entries start. Rewriting a few positions copies the runs
 * between them from the last bytes in one move each and writes only those positions: at 5,000
 * nodes a reply is ~150 KB, of which two pods' nodes change.
 */
export class Section {
  private bytes: Buffer = Buffer.alloc(0);
  private size = 0;
  /** Where position k's entries start; starts[n] is the end. */
  private starts: Int32Array;
  /** The buffers the next patch writes into (swapped with the current ones). */
  private spareBytes: Buffer = Buffer.alloc(0);
  private spareStarts: Int32Array;

  constructor(private readonly positions: number) {
    this.starts = new Int32Array(positions + 1);
    this.spareStarts = new Int32Array(positions + 1);
  }

  /** The entries without the first one's comma (what goes between the brackets). */
  body(): Buffer {
    return this.bytes.subarray(this.size > 0 ? 1 : 0, this.size);
  }

  /**
   * The entries' bytes and where each position's start, to write over in place (bytes of the
   * same length only: the starts stay).
   */
  entries(): { readonly bytes: Buffer; readonly starts: Int32Array } {
    return { bytes: this.bytes, starts: this.starts };
  }

  /**
   * Rewrites the positions `changed` (ascending) with `write`, which puts position k's entry
   * at `at` and returns its end (`at` for none); `length` says how many bytes it will write.
   */
  patch(changed: readonly number[], write: (k: number, out: Buffer, at: number) => number, length: (k: number) => number): void {
    const old = this.bytes;
    const from = this.starts;
    let size = this.size;
    for (const k of changed) size += length(k) - ((from[k + 1] as number) - (from[k] as number));
    if (this.spareBytes.length < size) this.spareBytes = Buffer.allocUnsafe(Math.max(size, 2 * this.spareBytes.length, 1024));
    const out = this.spareBytes;
    const to = this.spareStarts;
    let at = 0;
    let next = 0;
    const copy = (until: number): void => {
      // Positions next..until-1 unchanged: their bytes in one move, their starts shifted.
      // Nothing between two changed positions (all of prioritize's entries change when the
      // best or worst score moves): no call into Buffer.copy, ~0.1 us each.
      if (next === until) return;
      const a = from[next] as number;
      const b = from[until] as number;
      if (b > a) old.copy(out, at, a, b);
      const shift = at - a;
      for (let k = next; k < until; k++) to[k] = (from[k] as number) + shift;
      at += b - a;
    };
    for (const k of changed) {
      copy(k);
      to[k] = at;
      at = write(k, out, at);
      next = k + 1;
    }
    copy(this.positions);
    to[this.positions] = at;
    if (at !== size) throw new Error(`reply section: wrote ${at} bytes, expected ${size}`);
    this.spareBytes = old;
    this.spareStarts = from;
    this.bytes = out;
    this.starts = to;
    this.size = size;
  }
}
