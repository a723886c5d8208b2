/**
 * filter's and prioritize's replies written straight as UTF-8 bytes. At 5,000 nodes a pod the
 * reply is the largest thing the extender makes (prioritize: ~3,900 HostPriority entries, 150
 * KB): built as a string it is ~4,000 small strings concatenated, flattened, then encoded to
 * bytes again on the way out, all young garbage the collector pays for. Here every node name
 * is JSON-quoted once and kept as bytes (names repeat pod after pod) and copied into one buffer:
 * one allocation a reply, outside the JS heap. The text is exactly JSON.stringify of the reply object (wire.test.ts,
 * reply-bytes.test.ts).
 */
import { FAILED, NO_POSITION_SCORE, PASSED, sameList, UNRESOLVABLE, type FilterAnswer, type ListVerdicts, type NodeReasons, type PositionScores, type PriorityAnswer } from './answer.js';
import { Section } from './reply-sections.js';

/** Distinct strings kept quoted; past this the cache starts again (names from requests are not bounded). */
const MAX_QUOTED = 1 << 16;

const ascii = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const FILTER_HEAD = ascii('{"Nodes":');
const NODE_NAMES = ascii(',"NodeNames":');
const FAILED_BYTES = ascii(',"FailedNodes":{');
const UNRESOLVABLE_BYTES = ascii('},"FailedAndUnresolvableNodes":{');
const FILTER_TAIL = ascii('},"Error":""}');
const NULL = ascii('null');
const HOST = ascii('{"Host":');
const SCORE = ascii(',"Score":');
const DIGIT_0 = 0x30;

/** Each string's JSON text as UTF-8 bytes, made once. */
class QuotedCache {
  private readonly quoted = new Map<string, Uint8Array>();

  of(s: string): Uint8Array {
    let q = this.quoted.get(s);
    if (q === undefined) {
      if (this.quoted.size >= MAX_QUOTED) this.quoted.clear();
      q = Buffer.from(JSON.stringify(s), 'utf8');
      this.quoted.set(s, q);
    }
    return q;
  }
}

/** Copies `src` into `out` at `at`, returns the end (a loop: most pieces are a dozen bytes, where set() costs more). */
function put(out: Uint8Array, at: number, src: Uint8Array): number {
  const n = src.length;
  if (n > 64) {
    out.set(src, at);
    return at + n;
  }
  for (let k = 0; k < n; k++) out[at + k] = src[k] as number;
  return at + n;
}

/**
 * Writes replies; keeps the quoted names and reasons between replies. A reply is written once
 * into a scratch buffer kept between replies and copied out at its size (one lookup of each
 * name, not one to count and one to write). prioritize's list is the one filter just answered
 * (the routes hand back the same array): its names' quoted bytes are taken from filter's pass.
 */
export class ReplyWriter {
  private readonly names = new QuotedCache();
  private readonly reasons = new QuotedCache();
  private scratch = Buffer.allocUnsafe(64 * 1024);
  /** Per kept table (verdicts.ts): the bytes written for it last time, by section. */
  private readonly tables = new WeakMap<ListVerdicts, TableBytes>();
  /** The last filter's NodeNames and each one's quoted bytes (same positions). */
  private lastList: { readonly names: readonly string[]; readonly quoted: readonly Uint8Array[] } | null = null;

  /** The ExtenderFilterResult JSON of `a`, and where its NodeNames array lies in it (prioritize sends that text back). */
  filter(a: FilterAnswer): { readonly bytes: Buffer; readonly nodeNamesStart: number; readonly nodeNamesEnd: number } {
    const v = a.verdicts;
    if (v !== undefined && a.nodes === null && (a.verdictsRevision !== undefined ? v.revision === a.verdictsRevision : a.nodeNames === v.passed && a.failed === v.failed && a.unresolvable === v.unresolvable)) return this.filterOf(v);
    const nodes = a.nodes === null ? NULL : Buffer.from(JSON.stringify(a.nodes), 'utf8');
    let out = this.room(0, FILTER_HEAD.length + nodes.length + NODE_NAMES.length + NULL.length);
    let at = put(out, 0, FILTER_HEAD);
    at = put(out, at, nodes);
    at = put(out, at, NODE_NAMES);
    const nodeNamesStart = at;
    const list = a.nodeNames;
    if (list === null) at = put(out, at, NULL);
    else {
      const quoted = new Array<Uint8Array>(list.length);
      out[at++] = 0x5b; // [
      for (let k = 0; k < list.length; k++) {
        const q = (quoted[k] = this.names.of(list[k] as string));
        out = this.room(at, q.length + 2);
        if (k > 0) out[at++] = 0x2c; // ,
        at = put(out, at, q);
      }
      out[at++] = 0x5d; // ]
      this.lastList = { names: list, quoted };
    }
    const nodeNamesEnd = at;
    out = this.room(at, FAILED_BYTES.length);
    at = put(out, at, FAILED_BYTES);
    at = this.putReasons(at, a.failed);
    out = this.room(at, UNRESOLVABLE_BYTES.length);
    at = put(out, at, UNRESOLVABLE_BYTES);
    at = this.putReasons(at, a.unresolvable);
    out = this.room(at, FILTER_TAIL.length);
    at = put(out, at, FILTER_TAIL);
    return { bytes: Buffer.from(out.subarray(0, at)), nodeNamesStart, nodeNamesEnd };
  }

  /** The HostPriorityList JSON of `a` (scores are integers 0..10, as extender/v1 allows). */
  priorities(a: PriorityAnswer): Buffer {
    const { hosts, scores } = a;
    const v = a.verdicts;
    if (v !== undefined && (v.passedIs !== undefined ? v.passedIs(hosts) : sameList(hosts, v.passed))) return this.prioritiesOf(v, scores, a.positions);
    const last = this.lastList;
    const known = last !== null && last.names === hosts ? last.quoted : null;
    let out = this.room(0, 2);
    let at = 0;
    out[at++] = 0x5b; // [
    for (let k = 0; k < hosts.length; k++) {
      const q = known === null ? this.names.of(hosts[k] as string) : (known[k] as Uint8Array);
      const score = digits(scores[k] as number);
      out = this.room(at, 1 + HOST.length + q.length + SCORE.length + score.length + 2);
      if (k > 0) out[at++] = 0x2c; // ,
      at = put(out, at, HOST);
      at = put(out, at, q);
      at = put(out, at, SCORE);
      at = put(out, at, score);
      out[at++] = 0x7d; // }
    }
    out[at++] = 0x5d; // ]
    return Buffer.from(out.subarray(0, at));
  }

  /**
   * filter's reply from a kept table: each section (the passed names, the failed and the
   * unresolvable ones) is the bytes written for the table last time, rewritten only at the
   * positions whose verdict changed since (a pod or two's nodes between two pods of a shape).
   */
  private filterOf(v: ListVerdicts): { readonly bytes: Buffer; readonly nodeNamesStart: number; readonly nodeNamesEnd: number } {
    const t = this.tableBytes(v);
    const n = v.names.length;
    const changed: number[] = [];
    const { kinds, reasons } = v;
    // Only the positions the table judged again since this writer's last reply for it, where it
    // can say (a kept table: two to ten a pod of 5,000); else every position.
    const since = t.filterRevision >= 0 && v.changedSince !== undefined ? v.changedSince(t.filterRevision) : null;
    if (since === null) {
      for (let k = 0; k < n; k++) if (kinds[k] !== t.kinds[k] || reasons[k] !== t.reasons[k]) changed.push(k);
    } else for (const k of since) if (kinds[k] !== t.kinds[k] || reasons[k] !== t.reasons[k]) changed.push(k);
    if (changed.length > 0) {
      const quoted = t.quoted;
      const quotedReason = (k: number): Uint8Array => this.reasons.of(reasons[k] as string);
      // Each part patched at only the positions whose entry there comes, goes or changes (a
      // position's entry is in the part of its kind): a reason that changes leaves the passed
      // names' bytes as they are, and a part none of whose positions changed is not copied.
      const of = (kind: number): number[] => changed.filter((k) => kinds[k] === kind || t.kinds[k] === kind);
      const passed = of(PASSED);
      if (passed.length > 0) t.passed.patch(passed, (k, out, at) => (kinds[k] === PASSED ? putEntry(out, at, quoted[k] as Uint8Array) : at), (k) => (kinds[k] === PASSED ? 1 + (quoted[k] as Uint8Array).length : 0));
      for (const [section, kind] of [[t.failed, FAILED], [t.unresolvable, UNRESOLVABLE]] as const) {
        const mine = of(kind);
        if (mine.length === 0) continue;
        section.patch(
          mine,
          (k, out, at) => (kinds[k] === kind ? putPair(out, at, quoted[k] as Uint8Array, quotedReason(k)) : at),
          (k) => (kinds[k] === kind ? 2 + (quoted[k] as Uint8Array).length + quotedReason(k).length : 0),
        );
      }
      for (const k of changed) {
        t.kinds[k] = kinds[k] as number;
        t.reasons[k] = reasons[k] as string;
      }
    }
    t.filterRevision = v.revision ?? -1;
    const names = t.passed.body();
    const failed = t.failed.body();
    const unresolvable = t.unresolvable.body();
    const size = FILTER_HEAD.length + NULL.length + NODE_NAMES.length + names.length + 2 + FAILED_BYTES.length + failed.length + UNRESOLVABLE_BYTES.length + unresolvable.length + FILTER_TAIL.length;
    const out = Buffer.allocUnsafe(size);
    let at = put(out, 0, FILTER_HEAD);
    at = put(out, at, NULL);
    at = put(out, at, NODE_NAMES);
    const nodeNamesStart = at;
    out[at++] = 0x5b; // [
    out.set(names, at);
    at += names.length;
    out[at++] = 0x5d; // ]
    const nodeNamesEnd = at;
    at = put(out, at, FAILED_BYTES);
    out.set(failed, at);
    at += failed.length;
    at = put(out, at, UNRESOLVABLE_BYTES);
    out.set(unresolvable, at);
    at += unresolvable.length;
    put(out, at, FILTER_TAIL);
    return { bytes: out, nodeNamesStart, nodeNamesEnd };
  }

  /** prioritize's reply for a table's passed names: the entries whose score changed rewritten. */
  private prioritiesOf(v: ListVerdicts, scores: ArrayLike<number>, positions: PositionScores | undefined): Buffer {
    const t = this.tableBytes(v);
    const n = v.names.length;
    let now: Uint8Array;
    // The positions to look at: those the table says may have changed since the scores this
    // writer wrote last for it, else all.
    let only: readonly number[] | null = null;
    if (positions !== undefined && positions.byPosition.length === n) {
      now = positions.byPosition;
      if (positions.changed !== null && positions.from === t.scoresSerial) only = positions.changed;
    } else {
      const { kinds } = v;
      now = new Uint8Array(n).fill(NO_SCORE);
      for (let k = 0, j = 0; k < n; k++) {
        if (kinds[k] !== PASSED) continue;
        const s = scores[j++] as number;
        // Scores are 0..10 (prioritizeAnswer); anything else is written the general way.
        if (!(Number.isInteger(s) && s >= 0 && s <= 10)) {
          t.scoresSerial = -1;
          return this.priorities({ hosts: v.passed, scores });
        }
        now[k] = s;
      }
    }
    t.scoresSerial = positions?.serial ?? -1;
    // The best or worst score moving (pod after pod with binpack: the node just chosen is
    // fuller) changes nearly every entry's score, and only its digit: an entry that comes or
    // goes, or whose score becomes or stops being 10 (two digits), is written again; the others
    // keep their bytes, and a changed score is its digit written over in place, here and now
    // (the patch below copies the unchanged runs, digits included, from these bytes).
    const old = t.scores;
    const rewrite: number[] = [];
    const { bytes, starts } = t.priorities.entries();
    const { digitAt } = t;
    const look = (k: number): void => {
      const a = old[k] as number;
      const b = now[k] as number;
      if (a === b) return;
      if (a === NO_SCORE || b === NO_SCORE || a === 10 || b === 10) rewrite.push(k);
      else bytes[(starts[k] as number) + (digitAt[k] as number)] = DIGIT_0 + b;
      old[k] = b;
    };
    if (only === null) for (let k = 0; k < n; k++) look(k);
    else for (const k of only) look(k);
    if (rewrite.length > 0) {
      const { quoted, heads } = t;
      const head = (k: number): Uint8Array => (heads[k] ??= hostHead(quoted[k] as Uint8Array));
      const score = (k: number): number => old[k] as number;
      t.priorities.patch(rewrite, (k, out, at) => (score(k) === NO_SCORE ? at : putScore(out, put(out, at, head(k)), score(k))), (k) => (score(k) === NO_SCORE ? 0 : head(k).length + (score(k) === 10 ? 3 : 2)));
    }
    const body = t.priorities.body();
    const out = Buffer.allocUnsafe(body.length + 2);
    out[0] = 0x5b; // [
    out.set(body, 1);
    out[body.length + 1] = 0x5d; // ]
    return out;
  }

  /** What this writer keeps for table `v` (made on first sight: every position to write). */
  private tableBytes(v: ListVerdicts): TableBytes {
    let t = this.tables.get(v);
    if (t === undefined) {
      const quoted = v.names.map((name) => this.names.of(name));
      const n = v.names.length;
      const digitAt = new Int32Array(n);
      for (let k = 0; k < n; k++) digitAt[k] = 1 + HOST.length + (quoted[k] as Uint8Array).length + SCORE.length;
      t = {
        quoted,
        digitAt,
        kinds: new Uint8Array(n).fill(NO_KIND),
        reasons: new Array<string>(n).fill(''),
        scores: new Uint8Array(n).fill(NO_SCORE),
        passed: new Section(n),
        failed: new Section(n),
        unresolvable: new Section(n),
        priorities: new Section(n),
        heads: new Array<Uint8Array | undefined>(n),
        filterRevision: -1,
        scoresSerial: -1,
      };
      this.tables.set(v, t);
    }
    return t;
  }

  /** The scratch with room for `more` bytes after `at` (grown, what is written kept). */
  private room(at: number, more: number): Buffer {
    if (at + more <= this.scratch.length) return this.scratch;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.scratch.length, at + more));
    this.scratch.copy(grown, 0, 0, at);
    this.scratch = grown;
    return grown;
  }

  private putReasons(from: number, r: NodeReasons): number {
    let at = from;
    for (let k = 0; k < r.names.length; k++) {
      const name = this.names.of(r.names[k] as string);
      const reason = this.reasons.of(r.reasons[k] as string);
      const out = this.room(at, name.length + reason.length + 2);
      if (k > 0) out[at++] = 0x2c; // ,
      at = put(out, at, name);
      out[at++] = 0x3a; // :
      at = put(out, at, reason);
    }
    return at;
  }
}

/** A position's kind or score not written yet. */
const NO_KIND = 255;
const NO_SCORE = NO_POSITION_SCORE;

/** What a writer keeps for one table: each position's quoted name, what it last wrote there, and the sections' bytes. */
interface TableBytes {
  readonly quoted: readonly Uint8Array[];
  readonly kinds: Uint8Array;
  readonly reasons: string[];
  readonly scores: Uint8Array;
  readonly passed: Section;
  readonly failed: Section;
  readonly unresolvable: Section;
  readonly priorities: Section;
  /** Where the score's first digit lies in each position's prioritize entry (the length of its head). */
  readonly digitAt: Int32Array;
  /** prioritize's entry up to its score at each position, made when first written. */
  readonly heads: (Uint8Array | undefined)[];
  /** The table's revision (ListVerdicts.revision) filter's sections were last written for; -1: none. */
  filterRevision: number;
  /** The table's scores (PositionScores.serial) prioritize's section was last written from; -1: none or others. */
  scoresSerial: number;
}

/** `,` + a quoted name (a section's entries each start with a comma; the body drops the first). */
function putEntry(out: Uint8Array, at: number, name: Uint8Array): number {
  out[at] = 0x2c; // ,
  return put(out, at + 1, name);
}

/** `,"name":"reason"`. */
function putPair(out: Uint8Array, at: number, name: Uint8Array, reason: Uint8Array): number {
  out[at] = 0x2c; // ,
  at = put(out, at + 1, name);
  out[at] = 0x3a; // :
  return put(out, at + 1, reason);
}

/** A score 0..10's digits and `}`. */
function putScore(out: Uint8Array, at: number, s: number): number {
  if (s === 10) {
    out[at++] = DIGIT_0 + 1;
    out[at++] = DIGIT_0;
  } else out[at++] = DIGIT_0 + s;
  out[at] = 0x7d; // }
  return at + 1;
}

/** `,{"Host":"name","Score":` (the score's digits and `}` follow). */
function hostHead(name: Uint8Array): Uint8Array {
  const head = new Uint8Array(1 + HOST.length + name.length + SCORE.length);
  head[0] = 0x2c; // ,
  head.set(HOST, 1);
  head.set(name, 1 + HOST.length);
  head.set(SCORE, 1 + HOST.length + name.length);
  return head;
}

/** 0..10 as digits, made once; any other number as JSON.stringify writes it. */
const SMALL = Array.from({ length: 11 }, (_, k) => Uint8Array.of(...(k === 10 ? [DIGIT_0 + 1, DIGIT_0] : [DIGIT_0 + k])));
function digits(n: number): Uint8Array {
  return (Number.isInteger(n) && n >= 0 && n <= 10 ? SMALL[n] : undefined) ?? ascii(JSON.stringify(n));
}
