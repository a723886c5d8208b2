// The `net` path's client for bench/k8s-extender.bench.ts: the kube-scheduler's stand-in, in a
// process of its own (the bench pins it to one core with taskset and the extender to the
// other, so the client's work is not done on the extender's core).
//
// Per pod: filter's body (the pod's JSON and the names, as Go's encoder writes ExtenderArgs)
// from the server's untimed /bench/next; POST filter; prioritize's body; POST prioritize; the
// best-scored host to the untimed /bench/churn (the pod placed there, a bound pod leaves).
// Timed: each POST from its first byte out to its reply's last byte in (wall clock here; with
// --cpu the bench uses the server's CPU time that /bench/churn answers instead).
//
// Two ways to make prioritize's body (`client` mode):
// - `spliced` (default): the body is filter's body with its NodeNames member replaced by the
//   bytes of filter's reply's NodeNames array, found by a scan of the reply (what a client must
//   forward: the names that passed). Nothing is decoded or encoded. Each reply is read to its
//   last byte and checked cheaply (status 200, its length against content-length, the splice
//   found); every `sample`-th pod both replies are parsed whole and checked against each other
//   (prioritize answers exactly the names filter passed); the best host is found by a byte scan
//   of prioritize's reply. The first `verify` pods of a round (warm-up, untimed) are a
//   correctness pass: both replies parsed whole and compared with the extender's direct answer
//   for the same pod (/bench/direct: Extender.filter and .prioritize called in process).
// - `parsed` (the bench's client before session 22): filter's reply JSON.parse'd and
//   prioritize's body JSON.stringify'd from it, prioritize's reply parsed (Node's JSON for
//   what the kube-scheduler does in Go).
// Not measured in either: the kube-scheduler's own work (its plugins, its Go decoding of the
// replies), and making filter's body (fetched untimed, as the kube-scheduler has the pod's
// JSON and its node list before it calls).
//
// Protocol: one JSON line in per round ({ port, pods, warmup, mode, sample, verify }), one
// JSON line out (ClientRound); stdin closed ends the process.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { isDeepStrictEqual } from 'node:util';

export type ClientMode = 'spliced' | 'parsed';

export interface ClientRequest {
  readonly port: number;
  readonly pods: number;
  readonly warmup: number;
  readonly mode: ClientMode;
  /** Every sample-th timed pod's replies are parsed whole and checked (spliced mode). */
  readonly sample: number;
  /** The first `verify` pods (of the warm-up) are compared with the direct path's answer. */
  readonly verify: number;
}

/** What the server answers on /bench/churn: its CPU in the pod's two requests, by phase, and its collections so far. */
export interface ServerSpent {
  cpu: number;
  read: number;
  handle: number;
  write: number;
  majorGcs: number;
  majorGcMs: number;
  otherGcs: number;
  otherGcMs: number;
  /** The ms of this pod's window (filter's first byte in to prioritize's last out) that were a collection's pause. */
  gcInPodMs: number;
}

export interface ClientRound {
  /** Per timed pod: the wall clock ms of its two POSTs. */
  readonly wall: number[];
  /** Per timed pod: the server's CPU ms and its phases. */
  readonly server: ServerSpent[];
  /** Per timed pod: the client's own CPU ms from filter's first byte out to prioritize's reply checked. */
  readonly clientCpu: number[];
  readonly bytesOut: number[];
  readonly bytesIn: number[];
  /** Names filter passed, summed over the timed pods. */
  readonly feasible: number;
  /** The server's collection counters after the warm-up and at the end. */
  readonly gcFrom: ServerSpent | null;
  readonly gcAt: ServerSpent | null;
  /** Pods whose replies were parsed whole and checked, and those compared with the direct path. */
  readonly checked: number;
  readonly verified: number;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const NODE_NAMES = Buffer.from(',"NodeNames":', 'latin1');
const SCORE = Buffer.from('"Score":', 'latin1');
const HOST = Buffer.from('{"Host":', 'latin1');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The bytes of the JSON value that starts at `from` in `text` (an array, `null`), to its end:
 * brackets counted outside strings, escapes skipped.
 */
export function valueEnd(text: Uint8Array, from: number): number {
  if (text[from] !== 0x5b) {
    if (text[from] === 0x6e && text[from + 1] === 0x75 && text[from + 2] === 0x6c && text[from + 3] === 0x6c) return from + 4;
    throw new Error(`not an array or null at byte ${from}`);
  }
  let depth = 0;
  let inString = false;
  for (let k = from; k < text.length; k++) {
    const c = text[k] as number;
    if (inString) {
      if (c === BACKSLASH) k++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === 0x5b || c === 0x7b) depth++;
    else if (c === 0x5d || c === 0x7d) {
      depth--;
      if (depth === 0) return k + 1;
    }
  }
  throw new Error('the array does not end');
}

/**
 * prioritize's body from filter's: the same bytes up to its top-level `,"NodeNames":` (the last
 * member, as Go writes ExtenderArgs: Pod, Nodes, NodeNames), then the NodeNames array of
 * filter's reply (`{"Nodes":null,"NodeNames":[...],...}`), then `}`.
 */
export function spliceBody(filterBody: Buffer, filterReply: Buffer): Buffer {
  const cut = filterBody.lastIndexOf(NODE_NAMES);
  if (cut < 0) throw new Error('filter body has no NodeNames');
  // The reply's NodeNames is its second member: the first after `{"Nodes":null` or `{"Nodes":{...}`.
  const at = filterReply.indexOf(NODE_NAMES, 9);
  if (at < 0) throw new Error('filter reply has no NodeNames');
  const from = at + NODE_NAMES.length;
  const end = valueEnd(filterReply, from);
  const out = Buffer.allocUnsafe(cut + NODE_NAMES.length + (end - from) + 1);
  filterBody.copy(out, 0, 0, cut + NODE_NAMES.length);
  filterReply.copy(out, cut + NODE_NAMES.length, from, end);
  out[out.length - 1] = 0x7d;
  return out;
}

/**
 * The host of the highest Score in a HostPriorityList (`[{"Host":"n","Score":7},...]`, as the
 * extender writes it), the first of equals; null for an empty list. A byte scan, no parse.
 */
export function bestHost(reply: Buffer): string | null {
  let best: string | null = null;
  let bestScore = -1;
  let at = reply.indexOf(HOST);
  while (at >= 0) {
    const nameFrom = at + HOST.length;
    const scoreAt = reply.indexOf(SCORE, nameFrom);
    if (scoreAt < 0) throw new Error('a HostPriority without a Score');
    let k = scoreAt + SCORE.length;
    let score = 0;
    let digits = 0;
    for (let c = reply[k] as number; c >= 0x30 && c <= 0x39; c = reply[++k] as number, digits++) score = score * 10 + (c - 0x30);
    if (digits === 0) throw new Error('a Score that is not a whole number');
    if (score > bestScore) {
      bestScore = score;
      // Host's value ends at `,"Score":` (one byte before): a JSON string.
      best = JSON.parse(reply.toString('utf8', nameFrom, scoreAt - 1)) as string;
    }
    at = reply.indexOf(HOST, k);
  }
  return best;
}

interface FilterResult {
  NodeNames: string[] | null;
  FailedNodes: Record<string, string>;
  FailedAndUnresolvableNodes: Record<string, string>;
  Error: string;
}
type HostPriorityList = { Host: string; Score: number }[];

/** Both replies parsed whole and checked against each other; the names filter passed (count). */
function checkReplies(filterReply: Buffer, prioritizeReply: Buffer, asked: number): number {
  const f = JSON.parse(filterReply.toString('utf8')) as FilterResult;
  const p = JSON.parse(prioritizeReply.toString('utf8')) as HostPriorityList;
  const passed = f.NodeNames ?? [];
  if (f.Error !== '') throw new Error(`filter answered an error: ${f.Error}`);
  const answered = passed.length + Object.keys(f.FailedNodes).length + Object.keys(f.FailedAndUnresolvableNodes).length;
  if (answered !== asked) throw new Error(`filter answered ${answered} nodes of ${asked}`);
  if (p.length !== passed.length || p.some((h, k) => h.Host !== passed[k] || !Number.isInteger(h.Score) || h.Score < 0 || h.Score > 10)) throw new Error("prioritize's hosts are not the names filter passed, or a score is out of 0..10");
  return passed.length;
}

export async function clientRound(req: ClientRequest): Promise<ClientRound> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (path: string, body: Buffer | string): Promise<Buffer> =>
    new Promise((done, fail) => {
      const r = http.request({ host: '127.0.0.1', port: req.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        let got = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          got += c.length;
        });
        res.on('end', () => {
          const length = Number(res.headers['content-length'] ?? got);
          if (res.statusCode !== 200) fail(new Error(`${path}: ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`));
          else if (got !== length || got === 0) fail(new Error(`${path}: read ${got} bytes of ${length}`));
          else done(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, got));
        });
        res.on('error', fail);
      });
      r.on('error', fail);
      r.end(body);
    });
  const out = { wall: [] as number[], server: [] as ServerSpent[], clientCpu: [] as number[], bytesOut: [] as number[], bytesIn: [] as number[], feasible: 0, gcFrom: null as ServerSpent | null, gcAt: null as ServerSpent | null, checked: 0, verified: 0 };
  for (let i = 0; i < req.warmup + req.pods; i++) {
    const filterBody = await post('/bench/next', '{}');
    const verify = i < req.verify;
    const direct = verify ? (JSON.parse((await post('/bench/direct', '{}')).toString('utf8')) as { filter: FilterResult; prioritize: HostPriorityList }) : null;
    const asked = verify || req.mode === 'parsed' ? (JSON.parse(filterBody.toString('utf8')) as { NodeNames: string[] }).NodeNames.length : 0;
    const c0 = cpuMs();
    const t0 = performance.now();
    const filterReply = await post('/gpushare-scheduler/filter', filterBody);
    let t = performance.now() - t0;
    let prioritizeBody: Buffer | string;
    let passed: string[] | null = null;
    if (req.mode === 'parsed') {
      const { Pod } = JSON.parse(filterBody.toString('utf8')) as { Pod: unknown };
      const f = JSON.parse(filterReply.toString('utf8')) as FilterResult;
      passed = f.NodeNames ?? [];
      prioritizeBody = JSON.stringify({ Pod, Nodes: null, NodeNames: f.NodeNames });
    } else prioritizeBody = spliceBody(filterBody, filterReply);
    const t1 = performance.now();
    const prioritizeReply = await post('/gpushare-scheduler/prioritize', prioritizeBody);
    t += performance.now() - t1;
    let best: string | null;
    let feasible: number;
    if (req.mode === 'parsed') {
      const ranked = JSON.parse(prioritizeReply.toString('utf8')) as HostPriorityList;
      best = ranked.length === 0 ? null : ranked.reduce((a, b) => (b.Score > a.Score ? b : a)).Host;
      feasible = passed?.length ?? 0;
    } else {
      best = bestHost(prioritizeReply);
      // The passed count without a parse: prioritize has one entry per passed name.
      feasible = countOf(prioritizeReply, HOST);
    }
    const c = cpuMs() - c0;
    if (verify) {
      const f = JSON.parse(filterReply.toString('utf8')) as FilterResult;
      const p = JSON.parse(prioritizeReply.toString('utf8')) as HostPriorityList;
      if (!isDeepStrictEqual(f, direct?.filter)) throw new Error(`pod ${i}: filter over HTTP differs from the direct path`);
      if (!isDeepStrictEqual(p, direct?.prioritize)) throw new Error(`pod ${i}: prioritize over HTTP differs from the direct path`);
      checkReplies(filterReply, prioritizeReply, asked);
      out.verified++;
    } else if (req.mode === 'spliced' && i >= req.warmup && (i - req.warmup) % req.sample === 0) {
      const names = checkReplies(filterReply, prioritizeReply, (JSON.parse(filterBody.toString('utf8')) as { NodeNames: string[] }).NodeNames.length);
      if (names !== feasible) throw new Error(`pod ${i}: the byte scan counted ${feasible} hosts, the parse ${names}`);
      out.checked++;
    }
    const server = JSON.parse((await post('/bench/churn', JSON.stringify({ host: best }))).toString('utf8')) as ServerSpent;
    if (i === req.warmup - 1) out.gcFrom = server;
    if (i >= req.warmup) {
      out.wall.push(t);
      out.server.push(server);
      out.clientCpu.push(c);
      out.bytesOut.push(filterBody.length + Buffer.byteLength(prioritizeBody));
      out.bytesIn.push(filterReply.length + prioritizeReply.length);
      out.gcAt = server;
      out.feasible += feasible;
    }
  }
  agent.destroy();
  return out;
}

function countOf(text: Buffer, what: Buffer): number {
  let n = 0;
  for (let at = text.indexOf(what); at >= 0; at = text.indexOf(what, at + what.length)) n++;
  return n;
}

if (process.argv.includes('--client-process')) {
  for await (const line of createInterface({ input: process.stdin })) {
    const res = await clientRound(JSON.parse(line) as ClientRequest);
    process.stdout.write(`${JSON.stringify(res)}\n`);
  }
}
