/**
 * filter's and prioritize's bodies taken in as bytes. At 5,000 nodes an ExtenderArgs is ~110
 * KB, nearly all of it the NodeNames list, and the list repeats: the kube-scheduler sends every
 * node's name pod after pod (percentageOfNodesToScore 100), and prioritize sends back exactly
 * the names filter answered. A body laid out as Go writes it (wire.ts, splitNodeNamesAt) is
 * split where its list starts; the list's bytes are compared with the last few lists' bytes
 * (one memcmp) and parsed only when new; the rest (the pod, ~1 KB) likewise with the last few
 * rests (a pod's filter and its prioritize carry the same pod). A list seen again is the same
 * frozen array it was made into then, so the extender's kept verdicts know it by identity.
 * Anything else is parsed whole, and what is wrong with it is said there.
 */
import { parseExtenderArgs, parseRest, splitNodeNamesAt } from './wire.js';

/** Lists and rests remembered: the cluster's list, the last answers' lists, a pod's two requests. */
const REMEMBERED = 4;

/** An ExtenderArgs body taken apart: the rest parsed, and the node list (frozen: shared by every body with its bytes). */
export class SplitArgs {
  constructor(
    readonly rest: Record<string, unknown>,
    readonly names: unknown,
  ) {}

  /** The body as one object, as JSON.parse of the whole gives it. */
  whole(): Record<string, unknown> {
    return { ...this.rest, NodeNames: this.names };
  }
}

export class ArgsReader {
  private readonly lists = new RecentBytes();
  private readonly rests = new RecentBytes();
  private readonly checked = new CheckedArgs();

  /**
   * The body as the routes take it: SplitArgs where it is laid out as Go writes it, else the
   * whole parsed. Throws (JSON.parse's SyntaxError) where it is not JSON.
   */
  read(body: Buffer): unknown {
    const at = splitNodeNamesAt(body);
    if (at === null) return parseWhole(body);
    let rest = this.rests.get(body.subarray(0, at.restEnd));
    if (rest === undefined) {
      const parsed = parseRest(body, at);
      // Not an object: parsed whole, which says what is wrong (or, with a NodeNames deeper
      // than the top level, gives the object the split could not).
      if (parsed === null) return parseWhole(body);
      rest = this.rests.remember(Buffer.from(body.subarray(0, at.restEnd)), parsed);
    }
    const listBytes = body.subarray(at.namesStart, at.namesEnd);
    let names = this.lists.get(listBytes);
    if (names === undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(listBytes.toString('utf8'));
      } catch {
        return parseWhole(body);
      }
      names = this.lists.remember(Buffer.from(listBytes), Array.isArray(parsed) ? Object.freeze(parsed) : parsed);
    }
    return new SplitArgs(rest as Record<string, unknown>, names);
  }

  /**
   * Remembers filter's answer: `bytes`, the NodeNames array as written in its reply, is what
   * the kube-scheduler's prioritize sends back, and `names` the frozen list it stands for.
   */
  rememberAnswer(bytes: Uint8Array, names: readonly string[]): void {
    if (this.lists.promote(names)) return;
    this.lists.remember(Buffer.from(bytes), names);
    this.checked.trust(names);
  }

  /** A read body checked as ExtenderArgs (parseExtenderArgs), remembered per rest and list. */
  check(body: unknown): ReturnType<typeof parseExtenderArgs> {
    return body instanceof SplitArgs ? this.checked.of(body) : parseExtenderArgs(body);
  }
}

function parseWhole(body: Buffer): unknown {
  return JSON.parse(body.toString('utf8'));
}

type Checked = ReturnType<typeof parseExtenderArgs>;

/**
 * parseExtenderArgs of split bodies, remembered per rest and per list object (the same objects
 * come back while their bytes do): the pod is validated once for its filter and its
 * prioritize, a list of names once however many pods it comes with.
 */
class CheckedArgs {
  private readonly rests = new WeakMap<object, Checked>();
  private readonly stringLists = new WeakSet<object>();

  /** `names` is known to hold only strings (an answer the extender made). */
  trust(names: readonly string[]): void {
    this.stringLists.add(names);
  }

  of(body: SplitArgs): Checked {
    const { rest, names } = body;
    if (!Array.isArray(names)) return parseExtenderArgs(body.whole());
    if (!this.stringLists.has(names)) {
      // A name that is not a string: the schema's own error says which.
      if (!names.every((n) => typeof n === 'string')) return parseExtenderArgs(body.whole());
      this.stringLists.add(names);
    }
    let checked = this.rests.get(rest);
    if (checked === undefined) this.rests.set(rest, (checked = parseExtenderArgs({ ...rest, NodeNames: null })));
    return checked.ok ? { ok: true, value: { ...checked.value, NodeNames: names as string[] } } : checked;
  }
}

/**
 * The last few byte strings and what was made of each, most recently used first. Compared
 * whole: a hit costs one memcmp (Buffer.equals), ~10 us for 110 KB.
 */
class RecentBytes {
  private readonly entries: { bytes: Buffer; made: unknown }[] = [];

  get(bytes: Buffer): unknown {
    const { entries } = this;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k] as { bytes: Buffer; made: unknown };
      if (e.bytes.length !== bytes.length || !e.bytes.equals(bytes)) continue;
      // Most recent first: the cluster's list, asked pod after pod, outlives the answers between.
      if (k > 0) entries.unshift(...entries.splice(k, 1));
      return e.made;
    }
    return undefined;
  }

  /** Whether something was made `made` (then it is the most recent): an answer unchanged pod after pod is kept once. */
  promote(made: unknown): boolean {
    const k = this.entries.findIndex((e) => e.made === made);
    if (k > 0) this.entries.unshift(...this.entries.splice(k, 1));
    return k >= 0;
  }

  /** Remembers `bytes` (the caller's copy: kept as is) as `made`; returns `made`. */
  remember(bytes: Buffer, made: unknown): unknown {
    this.entries.unshift({ bytes, made });
    if (this.entries.length > REMEMBERED) this.entries.pop();
    return made;
  }
}
