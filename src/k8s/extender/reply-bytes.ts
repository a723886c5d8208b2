/**
 * filter's and prioritize's replies written straight as UTF-8 bytes. At 5,000 nodes a pod the
 * reply is the largest thing the extender makes (prioritize: ~3,900 HostPriority entries, 150
 * KB): built as a string it is ~4,000 small strings concatenated, flattened, then encoded to
 * bytes again on the way out, all young garbage the collector pays for. Here every node name
 * is JSON-quoted once and kept as bytes (names repeat pod after pod), the reply's length is
 * summed first and the bytes copied into one buffer of that size: one allocation a reply,
 * outside the JS heap. The text is exactly JSON.stringify of the reply object (wire.test.ts,
 * reply-bytes.test.ts).
 */
import type { FilterAnswer, NodeReasons, PriorityAnswer } from './wire.js';

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

/** Writes replies; keeps the quoted names and reasons between replies. */
export class ReplyWriter {
  private readonly names = new QuotedCache();
  private readonly reasons = new QuotedCache();

  /** The ExtenderFilterResult JSON of `a`, and where its NodeNames array lies in it (prioritize sends that text back). */
  filter(a: FilterAnswer): { readonly bytes: Buffer; readonly nodeNamesStart: number; readonly nodeNamesEnd: number } {
    const nodes = a.nodes === null ? NULL : Buffer.from(JSON.stringify(a.nodes), 'utf8');
    const list = a.nodeNames;
    let size = FILTER_HEAD.length + nodes.length + NODE_NAMES.length + FAILED.length + UNRESOLVABLE.length + FILTER_TAIL.length;
    if (list === null) size += NULL.length;
    else {
      size += 2 + Math.max(0, list.length - 1);
      for (let k = 0; k < list.length; k++) size += this.names.of(list[k] as string).length;
    }
    size += this.reasonsSize(a.failed) + this.reasonsSize(a.unresolvable);
    const out = Buffer.allocUnsafe(size);
    let at = put(out, 0, FILTER_HEAD);
    at = put(out, at, nodes);
    at = put(out, at, NODE_NAMES);
    const nodeNamesStart = at;
    if (list === null) at = put(out, at, NULL);
    else {
      out[at++] = 0x5b; // [
      for (let k = 0; k < list.length; k++) {
        if (k > 0) out[at++] = 0x2c; // ,
        at = put(out, at, this.names.of(list[k] as string));
      }
      out[at++] = 0x5d; // ]
    }
    const nodeNamesEnd = at;
    at = put(out, at, FAILED);
    at = this.putReasons(out, at, a.failed);
    at = put(out, at, UNRESOLVABLE);
    at = this.putReasons(out, at, a.unresolvable);
    at = put(out, at, FILTER_TAIL);
    if (at !== size) throw new Error(`gpushare: filter reply is ${at} bytes, ${size} were counted`);
    return { bytes: out, nodeNamesStart, nodeNamesEnd };
  }

  /** The HostPriorityList JSON of `a` (scores are integers 0..10, as extender/v1 allows). */
  priorities(a: PriorityAnswer): Buffer {
    const { hosts, scores } = a;
    let size = 2 + Math.max(0, hosts.length - 1) + hosts.length * (HOST.length + SCORE.length + 1);
    for (let k = 0; k < hosts.length; k++) size += this.names.of(hosts[k] as string).length + digits(scores[k] as number).length;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    out[at++] = 0x5b; // [
    for (let k = 0; k < hosts.length; k++) {
      if (k > 0) out[at++] = 0x2c; // ,
      at = put(out, at, HOST);
      at = put(out, at, this.names.of(hosts[k] as string));
      at = put(out, at, SCORE);
      at = put(out, at, digits(scores[k] as number));
      out[at++] = 0x7d; // }
    }
    out[at++] = 0x5d; // ]
    if (at !== size) throw new Error(`gpushare: prioritize reply is ${at} bytes, ${size} were counted`);
    return out;
  }

  private reasonsSize(r: NodeReasons): number {
    // `"name":"reason"`, commas between.
    let size = Math.max(0, r.names.length - 1) + r.names.length;
    for (let k = 0; k < r.names.length; k++) size += this.names.of(r.names[k] as string).length + this.reasons.of(r.reasons[k] as string).length;
    return size;
  }

  private putReasons(out: Uint8Array, from: number, r: NodeReasons): number {
    let at = from;
    for (let k = 0; k < r.names.length; k++) {
      if (k > 0) out[at++] = 0x2c; // ,
      at = put(out, at, this.names.of(r.names[k] as string));
      out[at++] = 0x3a; // :
      at = put(out, at, this.reasons.of(r.reasons[k] as string));
    }
    return at;
  }
}

/** 0..10 as digits, made once; any other number as JSON.stringify writes it. */
const SMALL = Array.from({ length: 11 }, (_, k) => Uint8Array.of(...(k === 10 ? [DIGIT_0 + 1, DIGIT_0] : [DIGIT_0 + k])));
function digits(n: number): Uint8Array {
  return (Number.isInteger(n) && n >= 0 && n <= 10 ? SMALL[n] : undefined) ?? ascii(JSON.stringify(n));
}
