/**
 * filter's and prioritize's replies written straight as UTF-8 bytes. At 5,000 nodes a pod the
 * reply is the largest thing the extender makes (prioritize: ~3,900 HostPriority entries, 150
 * KB): built as a string it is ~4,000 small strings concatenated, flattened, then encoded to
 * bytes again on the way out, all young garbage the collector pays for. Here every node name
 * is JSON-quoted once and kept as bytes (names repeat pod after pod) and copied into one buffer:
 * one allocation a reply, outside the JS heap. The text is exactly JSON.stringify of the reply object (wire.test.ts,
 * reply-bytes.test.ts).
 */
import type { FilterAnswer, NodeReasons, PriorityAnswer } from './answer.js';

/** Distinct strings kept quoted; past this the cache starts again (names from requests are not bounded). */
const MAX_QUOTED = 1 << 16;

const ascii = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const FILTER_HEAD = ascii('{"Nodes":');
const NODE_NAMES = ascii(',"NodeNames":');
const FAILED = ascii(',"FailedNodes":{');
const UNRESOLVABLE = ascii('},"FailedAndUnresolvableNodes":{');
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
  /** The last filter's NodeNames and each one's quoted bytes (same positions). */
  private lastList: { readonly names: readonly string[]; readonly quoted: readonly Uint8Array[] } | null = null;

  /** The ExtenderFilterResult JSON of `a`, and where its NodeNames array lies in it (prioritize sends that text back). */
  filter(a: FilterAnswer): { readonly bytes: Buffer; readonly nodeNamesStart: number; readonly nodeNamesEnd: number } {
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
    out = this.room(at, FAILED.length);
    at = put(out, at, FAILED);
    at = this.putReasons(at, a.failed);
    out = this.room(at, UNRESOLVABLE.length);
    at = put(out, at, UNRESOLVABLE);
    at = this.putReasons(at, a.unresolvable);
    out = this.room(at, FILTER_TAIL.length);
    at = put(out, at, FILTER_TAIL);
    return { bytes: Buffer.from(out.subarray(0, at)), nodeNamesStart, nodeNamesEnd };
  }

  /** The HostPriorityList JSON of `a` (scores are integers 0..10, as extender/v1 allows). */
  priorities(a: PriorityAnswer): Buffer {
    const { hosts, scores } = a;
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

/** 0..10 as digits, made once; any other number as JSON.stringify writes it. */
const SMALL = Array.from({ length: 11 }, (_, k) => Uint8Array.of(...(k === 10 ? [DIGIT_0 + 1, DIGIT_0] : [DIGIT_0 + k])));
function digits(n: number): Uint8Array {
  return (Number.isInteger(n) && n >= 0 && n <= 10 ? SMALL[n] : undefined) ?? ascii(JSON.stringify(n));
}
