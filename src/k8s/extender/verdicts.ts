/**
 * filter's verdicts for one pod shape over one node list, kept between pods and brought up to
 * date node by node. The kube-scheduler sends the same list (every node, with
 * percentageOfNodesToScore 100) pod after pod, and between two pods only the nodes a pod was
 * bound to or left change: each position keeps the node state its verdict is for, and only the
 * positions whose state is another object are judged again (decide.ts's evaluatePod over just
 * those names: a node's verdict depends on its own state, the empty cluster's node and the pod's
 * shape, nothing cluster-wide the view changes without rebuilding its snapshot; see `Basis`).
 * The answer's lists are made again only when a verdict changed, and the reply writer
 * (reply-bytes.ts) patches its bytes at the positions that changed.
 */
import type { ClusterSnapshot, NodeState } from '../../scheduler/index.js';
import { FAILED, NO_POSITION_SCORE, PASSED, sameList, UNRESOLVABLE, type FilterAnswer, type ListVerdicts, type NodeReasons, type PositionScores } from './answer.js';
import { MAX_EXTENDER_PRIORITY } from './wire.js';
import type { PodEvaluation } from './decide.js';

/**
 * What every verdict of a table also depends on: the cluster's structure (the snapshot's node
 * index, remade when a node comes, goes or changes its GPUs, with the snapshot-wide scale the
 * scores read), the empty cluster (failed vs unresolvable) and the nodes refused for a bad
 * inventory (their reason). Any of them another object or number: the table is rebuilt.
 */
export interface Basis {
  readonly nodeByName: ClusterSnapshot['nodeByName'];
  readonly empty: ClusterSnapshot;
  readonly problems: number;
}

/** Revisions whose judged positions a table keeps for its reply writer (ListVerdicts.changedSince). */
const CHANGE_LOG = 64;

export class VerdictTable implements ListVerdicts {
  readonly kinds: Uint8Array;
  readonly reasons: string[];
  /** The engine's score at each passed position (NaN elsewhere). */
  private readonly scores: Float64Array;
  /** The node state each position's verdict is for (undefined: not a node of the view). */
  private readonly states: (NodeState | undefined)[];
  /** A frozen list found equal to `names` (fits). */
  private frozenSame: readonly string[] | null = null;
  /** The view's generation the table was last brought up to date at. */
  generation = -1;
  /** The view's snapshot (ClusterView.snapshotSeq) the table was last brought up to date with; -1: none. */
  snapshotSeq = -1;
  /** Bumped by every apply (ListVerdicts.revision). */
  revision = 0;
  /** The last scaledScores: the range it scaled, its scores, the revision they are for. */
  private scaled: { readonly lo: number; readonly hi: number; readonly byPosition: Uint8Array; readonly revision: number; readonly serial: number } | null = null;
  private scaledSerial = 0;
  /** The positions each of the last revisions judged again (oldest first), from `logFrom` on. */
  private changeLog: { readonly revision: number; readonly positions: readonly number[] }[] = [];
  private logFrom = 0;
  /** Each node ordinal's position in the list (-1: none), or null when a node is at two positions. */
  private readonly positionOf: Int32Array | null;
  /**
   * The answer's lists, made when first read after a verdict of their own changed (null: to
   * make) and then the same object until one does, so answers given out keep theirs and an
   * unchanged passed list stays the object the routes remember for prioritize. The routes
   * never read the refused ones (their writer reads kinds and reasons by position), so on
   * their path those are not made at all. The scores are not among them: prioritize reads
   * them by position (scaledScores).
   */
  private passedList: readonly string[] | null = null;
  private refusedLists: { readonly failed: NodeReasons; readonly unresolvable: NodeReasons } | null = null;

  constructor(
    /** The node list (a copy: the caller's array may change). */
    readonly names: readonly string[],
    readonly ordinals: readonly number[],
    readonly basis: Basis,
  ) {
    const n = names.length;
    this.kinds = new Uint8Array(n).fill(UNRESOLVABLE);
    this.reasons = new Array<string>(n).fill('');
    this.scores = new Float64Array(n).fill(NaN);
    this.states = new Array<NodeState | undefined>(n).fill(undefined);
    let top = -1;
    for (const i of ordinals) if (i > top) top = i;
    let positionOf: Int32Array | null = new Int32Array(top + 1).fill(-1);
    for (let k = 0; k < n; k++) {
      const i = ordinals[k] as number;
      if (i < 0) continue;
      if (positionOf[i] !== -1) {
        positionOf = null;
        break;
      }
      positionOf[i] = k;
    }
    this.positionOf = positionOf;
  }

  /**
   * Whether this table answers for `names` under `basis`: compared name by name (the list is
   * sent anew each pod), except a frozen list found equal before (the routes freeze the lists
   * they parse and hand the same one back while its text comes again).
   */
  fits(names: readonly string[], basis: Basis): boolean {
    const b = this.basis;
    if (b.nodeByName !== basis.nodeByName || b.empty !== basis.empty || b.problems !== basis.problems) return false;
    if (names === this.frozenSame) return true;
    if (!sameList(this.names, names)) return false;
    if (Object.isFrozen(names)) this.frozenSame = names;
    return true;
  }

  /** The engine's score of each of `names` (NaN: refused), or null where one is not in the list. */
  scoresOf(names: readonly string[]): Float64Array | null {
    const at = new Map<string, number>();
    for (let k = 0; k < this.names.length; k++) at.set(this.names[k] as string, k);
    const raw = new Float64Array(names.length);
    for (let j = 0; j < names.length; j++) {
      const k = at.get(names[j] as string);
      if (k === undefined) return null;
      raw[j] = this.scores[k] as number;
    }
    return raw;
  }

  /**
   * Positions whose node is no longer the state their verdict is for (all of them on a new
   * table), ascending. `changed`: the ordinals of the nodes changed since the table's snapshot
   * (ClusterView.changedSince), so only their positions are looked at; null: every position.
   */
  stale(snapshot: ClusterSnapshot, changed: readonly number[] | null = null): number[] {
    const out: number[] = [];
    const { ordinals, states, positionOf } = this;
    const nodes = snapshot.nodes;
    if (changed !== null && positionOf !== null && this.generation >= 0) {
      for (const i of changed) {
        const k = i < positionOf.length ? (positionOf[i] as number) : -1;
        if (k >= 0 && nodes[i] !== states[k]) out.push(k);
      }
      // A node changed in two snapshots is listed twice: once each, in list order.
      out.sort((a, b) => a - b);
      let w = 0;
      for (let r = 0; r < out.length; r++) if (r === 0 || out[r] !== out[r - 1]) out[w++] = out[r] as number;
      out.length = w;
      return out;
    }
    for (let k = 0; k < ordinals.length; k++) {
      const i = ordinals[k] as number;
      const node = i >= 0 ? nodes[i] : undefined;
      if (node !== states[k] || this.generation < 0) out.push(k);
    }
    return out;
  }

  /**
   * Takes `ev`, the evaluation of the nodes at `positions` (asked in that order), as their
   * verdicts for the states `snapshot` holds; `problem` gives the reason of an unresolvable
   * node the view refuses for its inventory. Returns whether any verdict changed.
   */
  changedSince(revision: number): readonly number[] | null {
    if (revision < this.logFrom || revision > this.revision) return null;
    const out: number[] = [];
    for (const e of this.changeLog) if (e.revision > revision) for (const k of e.positions) out.push(k);
    out.sort((a, b) => a - b);
    let w = 0;
    for (let r = 0; r < out.length; r++) if (r === 0 || out[r] !== out[r - 1]) out[w++] = out[r] as number;
    out.length = w;
    return out;
  }

  apply(snapshot: ClusterSnapshot, positions: readonly number[], ev: PodEvaluation, problem: (node: string) => string | null): boolean {
    this.changeLog.push({ revision: ++this.revision, positions: positions.slice() });
    if (this.changeLog.length > CHANGE_LOG) this.logFrom = (this.changeLog.shift() as { revision: number }).revision;
    const at = new Map<string, number[]>();
    for (const k of positions) {
      const name = this.names[k] as string;
      const list = at.get(name);
      if (list) list.push(k);
      else at.set(name, [k]);
      const i = this.ordinals[k] as number;
      this.states[k] = i >= 0 ? snapshot.nodes[i] : undefined;
    }
    // What changed decides which of the answer's lists are made again: the passed names only
    // when a position comes into or goes out of them, the refused ones only when one of theirs
    // changed kind or reason; a passed node's new score changes no list.
    let changed = false;
    let passedSet = false;
    let refused = false;
    const set = (name: string, kind: number, reason: string, score: number): void => {
      for (const k of at.get(name) ?? []) {
        const was = this.kinds[k] as number;
        if (was !== kind || this.reasons[k] !== reason || !sameScore(this.scores[k] as number, score)) changed = true;
        if ((was === PASSED) !== (kind === PASSED)) passedSet = true;
        if ((was !== PASSED || kind !== PASSED) && (was !== kind || this.reasons[k] !== reason)) refused = true;
        this.kinds[k] = kind;
        this.reasons[k] = reason;
        this.scores[k] = score;
      }
    };
    for (let j = 0; j < ev.passed.length; j++) set(ev.passed[j] as string, PASSED, '', ev.passedScores[j] as number);
    for (let j = 0; j < ev.failed.names.length; j++) set(ev.failed.names[j] as string, FAILED, ev.failed.reasons[j] as string, NaN);
    for (let j = 0; j < ev.unresolvable.names.length; j++) {
      const name = ev.unresolvable.names[j] as string;
      set(name, UNRESOLVABLE, problem(name) ?? (ev.unresolvable.reasons[j] as string), NaN);
    }
    const first = this.generation < 0;
    if (first || passedSet) this.passedList = null;
    if (first || refused) this.refusedLists = null;
    return changed;
  }

  /** The passed names, in the list's order: a frozen list, the same object until the passed set changes. */
  get passed(): readonly string[] {
    return (this.passedList ??= this.passedNames());
  }

  get failed(): NodeReasons {
    return (this.refusedLists ??= this.makeRefused()).failed;
  }

  get unresolvable(): NodeReasons {
    return (this.refusedLists ??= this.makeRefused()).unresolvable;
  }

  /**
   * filter's answer from the table as it is now: the passed names (the table's list), and
   * the refused lists made from the table only when first asked for (the routes' writer never
   * asks: it reads kinds and reasons by position). Read it before the extender's next call: a
   * refused list first asked for after the table changed is refused with an error.
   */
  answer(): FilterAnswer {
    const revision = this.revision;
    const refused = (): { readonly failed: NodeReasons; readonly unresolvable: NodeReasons } => {
      if (this.revision !== revision) throw new Error(`gpushare: a kept filter answer (revision ${revision}) read after its table changed (revision ${this.revision})`);
      return (this.refusedLists ??= this.makeRefused());
    };
    return {
      nodes: null,
      nodeNames: this.passed,
      get failed(): NodeReasons {
        return refused().failed;
      },
      get unresolvable(): NodeReasons {
        return refused().unresolvable;
      },
      verdicts: this,
      verdictsRevision: revision,
    };
  }

  /** Whether `names` are exactly the passed names, in the list's order (no list made). */
  passedIs(names: readonly string[]): boolean {
    if (names === this.passedList) return true;
    const { kinds, names: all } = this;
    let j = 0;
    for (let k = 0; k < kinds.length; k++) {
      if (kinds[k] !== PASSED) continue;
      if (j >= names.length || names[j] !== all[k]) return false;
      j++;
    }
    return j === names.length;
  }

  /**
   * prioritize's 0..10 scores of the passed positions (Extender's scaling: the best engine
   * score 10, the worst 0, all alike all 10, a NaN score 0), by position of the list. Where the
   * best and worst scores are those of the last call and the table can say which positions it
   * judged again since, only those are scaled again (at 90% occupancy nearly every pod; at 50%
   * about half, binpack moving the best score the other half), and the answer says which.
   */
  scaledScores(): PositionScores {
    const { kinds, scores: raw } = this;
    const n = kinds.length;
    // Every position that did not pass holds NaN (apply), and NaN is neither below nor above
    // anything: the range of the passed scores without a look at the kinds.
    let lo = Infinity;
    let hi = -Infinity;
    for (let k = 0; k < n; k++) {
      const s = raw[k] as number;
      if (s < lo) lo = s;
      if (s > hi) hi = s;
    }
    const flat = hi - lo <= 1e-12 * Math.max(1, Math.abs(hi));
    // The module's constants as locals: read once, not once a position.
    const pass = PASSED;
    const none = NO_POSITION_SCORE;
    const top = MAX_EXTENDER_PRIORITY;
    const at = (k: number): number => {
      if (kinds[k] !== pass) return none;
      const s = raw[k] as number;
      return Number.isNaN(s) ? 0 : flat ? top : Math.round((top * (s - lo)) / (hi - lo));
    };
    const last = this.scaled;
    const changed = last !== null && last.lo === lo && last.hi === hi ? this.changedSince(last.revision) : null;
    let byPosition: Uint8Array;
    if (last !== null && changed !== null) {
      byPosition = last.byPosition.slice();
      for (const k of changed) byPosition[k] = at(k);
    } else {
      byPosition = new Uint8Array(n);
      for (let k = 0; k < n; k++) byPosition[k] = at(k);
    }
    const serial = ++this.scaledSerial;
    this.scaled = { lo, hi, byPosition, revision: this.revision, serial };
    return { byPosition, serial, from: last?.serial ?? -1, changed };
  }

  /** The passed names, in the list's order (a new list). */
  private passedNames(): readonly string[] {
    const { kinds, names } = this;
    let count = 0;
    for (let k = 0; k < kinds.length; k++) if (kinds[k] === PASSED) count++;
    const passed = new Array<string>(count);
    for (let k = 0, j = 0; k < kinds.length; k++) if (kinds[k] === PASSED) passed[j++] = names[k] as string;
    // Frozen: handed out as answers, remembered by the routes and sent back by prioritize.
    return Object.freeze(passed);
  }

  /** The failed and the unresolvable names with their reasons, in the list's order (each list made at its size). */
  private makeRefused(): { readonly failed: NodeReasons; readonly unresolvable: NodeReasons } {
    const { kinds, names, reasons } = this;
    const n = kinds.length;
    let failedCount = 0;
    let unresolvableCount = 0;
    for (let k = 0; k < n; k++) {
      const kind = kinds[k];
      if (kind === FAILED) failedCount++;
      else if (kind === UNRESOLVABLE) unresolvableCount++;
    }
    const failed: NodeReasons = { names: new Array<string>(failedCount), reasons: new Array<string>(failedCount) };
    const unresolvable: NodeReasons = { names: new Array<string>(unresolvableCount), reasons: new Array<string>(unresolvableCount) };
    for (let k = 0, f = 0, u = 0; k < n; k++) {
      const kind = kinds[k];
      if (kind === FAILED) {
        failed.names[f] = names[k] as string;
        failed.reasons[f++] = reasons[k] as string;
      } else if (kind === UNRESOLVABLE) {
        unresolvable.names[u] = names[k] as string;
        unresolvable.reasons[u++] = reasons[k] as string;
      }
    }
    return { failed, unresolvable };
  }
}

function sameScore(a: number, b: number): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

/**
 * One pod shape's verdicts kept by node ordinal, for node lists that change pod by pod (the
 * kube-scheduler's percentageOfNodesToScore window moving round the cluster: each filter's list
 * is new, so no VerdictTable fits it). A node's verdict is kept with the state it is for and is
 * served only while the snapshot holds that very state object at its ordinal (under the same
 * Basis); every other name of a list is judged again, and its verdict replaces the kept one.
 */
export class NodeVerdicts {
  private readonly states: (NodeState | undefined)[];
  private readonly kinds: Uint8Array;
  private readonly reasons: string[];
  private readonly scores: Float64Array;
  /** Per ordinal, the last judge() call that asked for it again (a name twice in a list is judged once). */
  private readonly asked: Uint32Array;
  private call = 0;

  constructor(
    readonly basis: Basis,
    private readonly size: number,
  ) {
    this.states = new Array<NodeState | undefined>(size).fill(undefined);
    this.kinds = new Uint8Array(size).fill(UNRESOLVABLE);
    this.reasons = new Array<string>(size).fill('');
    this.scores = new Float64Array(size).fill(NaN);
    this.asked = new Uint32Array(size);
  }

  fits(basis: Basis, size: number): boolean {
    const b = this.basis;
    return b.nodeByName === basis.nodeByName && b.empty === basis.empty && b.problems === basis.problems && this.size === size;
  }

  /**
   * The evaluation of `names` (at `ordinals` in `snapshot`, -1: not a node of the view), in the
   * list's order: kept verdicts where the node's state is the one they are for, `evaluate` (the
   * engine, evaluatePod) over the rest. Names not of the view are judged every time.
   */
  judge(snapshot: ClusterSnapshot, names: readonly string[], ordinals: readonly number[], evaluate: (names: readonly string[], ordinals: readonly number[]) => PodEvaluation): PodEvaluation {
    const { states, kinds, reasons, scores, asked, size } = this;
    const nodes = snapshot.nodes;
    const call = ++this.call;
    const staleNames: string[] = [];
    const staleOrdinals: number[] = [];
    for (let k = 0; k < names.length; k++) {
      const i = ordinals[k] as number;
      if (i >= 0 && i < size) {
        const node = nodes[i];
        if (node !== undefined && states[i] === node) continue;
        if (asked[i] === call) continue;
        asked[i] = call;
        // Forgotten until its new verdict comes (one missing from the evaluation is not served).
        states[i] = undefined;
      }
      staleNames.push(names[k] as string);
      staleOrdinals.push(i);
    }
    // Verdicts of names not of the view (or past the kept size), for this call only.
    const outside = new Map<string, string>();
    if (staleNames.length > 0) {
      const ev = evaluate(staleNames, staleOrdinals);
      const ordinalOf = new Map<string, number>();
      for (let j = 0; j < staleNames.length; j++) ordinalOf.set(staleNames[j] as string, staleOrdinals[j] as number);
      const keep = (name: string, i: number, kind: number, reason: string, score: number): void => {
        if (i >= 0 && i < size) {
          states[i] = nodes[i];
          kinds[i] = kind;
          reasons[i] = reason;
          scores[i] = score;
        } else if (kind === UNRESOLVABLE) outside.set(name, reason);
      };
      for (let j = 0; j < ev.passed.length; j++) keep(ev.passed[j] as string, ev.passedOrdinals[j] as number, PASSED, '', ev.passedScores[j] as number);
      for (const [list, kind] of [[ev.failed, FAILED], [ev.unresolvable, UNRESOLVABLE]] as const) {
        for (let j = 0; j < list.names.length; j++) {
          const name = list.names[j] as string;
          keep(name, ordinalOf.get(name) ?? -1, kind, list.reasons[j] as string, NaN);
        }
      }
    }
    const passed: string[] = [];
    const passedOrdinals: number[] = [];
    const passedScores: number[] = [];
    const failed: NodeReasons = { names: [], reasons: [] };
    const unresolvable: NodeReasons = { names: [], reasons: [] };
    for (let k = 0; k < names.length; k++) {
      const name = names[k] as string;
      const i = ordinals[k] as number;
      if (i >= 0 && i < size) {
        // No verdict for the node's state now (the evaluation left it out): judged whole.
        if (states[i] !== nodes[i] || states[i] === undefined) return evaluate(names, ordinals);
        const kind = kinds[i];
        if (kind === PASSED) {
          passed.push(name);
          passedOrdinals.push(i);
          passedScores.push(scores[i] as number);
        } else {
          const to = kind === FAILED ? failed : unresolvable;
          to.names.push(name);
          to.reasons.push(reasons[i] as string);
        }
        continue;
      }
      const why = outside.get(name);
      if (why === undefined) return evaluate(names, ordinals);
      unresolvable.names.push(name);
      unresolvable.reasons.push(why);
    }
    return { passed, passedOrdinals, passedScores, failed, unresolvable };
  }
}
