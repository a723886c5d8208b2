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
import { FAILED, PASSED, sameList, UNRESOLVABLE, type ListVerdicts, type NodeReasons } from './answer.js';
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
  /** The answer's lists: new arrays whenever a verdict changes (answers given out keep theirs). */
  passed: readonly string[] = [];
  passedOrdinals: readonly number[] = [];
  passedScores: readonly number[] = [];
  failed: NodeReasons = { names: [], reasons: [] };
  unresolvable: NodeReasons = { names: [], reasons: [] };

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

  /** Positions whose node is no longer the state their verdict is for (all of them on a new table). */
  stale(snapshot: ClusterSnapshot): number[] {
    const out: number[] = [];
    const { ordinals, states } = this;
    const nodes = snapshot.nodes;
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
  apply(snapshot: ClusterSnapshot, positions: readonly number[], ev: PodEvaluation, problem: (node: string) => string | null): boolean {
    const at = new Map<string, number[]>();
    for (const k of positions) {
      const name = this.names[k] as string;
      const list = at.get(name);
      if (list) list.push(k);
      else at.set(name, [k]);
      const i = this.ordinals[k] as number;
      this.states[k] = i >= 0 ? snapshot.nodes[i] : undefined;
    }
    let changed = false;
    const set = (name: string, kind: number, reason: string, score: number): void => {
      for (const k of at.get(name) ?? []) {
        if (this.kinds[k] !== kind || this.reasons[k] !== reason || !sameScore(this.scores[k] as number, score)) changed = true;
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
    if (changed || this.generation < 0) this.makeLists();
    return changed;
  }

  /** The answer's lists, in the list's order. */
  private makeLists(): void {
    const { kinds, names, reasons, scores, ordinals } = this;
    let count = 0;
    for (let k = 0; k < kinds.length; k++) if (kinds[k] === PASSED) count++;
    const passed = new Array<string>(count);
    const passedOrdinals = new Array<number>(count);
    const passedScores = new Array<number>(count);
    const failed: NodeReasons = { names: [], reasons: [] };
    const unresolvable: NodeReasons = { names: [], reasons: [] };
    let j = 0;
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[k];
      if (kind === PASSED) {
        passed[j] = names[k] as string;
        passedOrdinals[j] = ordinals[k] as number;
        passedScores[j++] = scores[k] as number;
        continue;
      }
      const to = kind === FAILED ? failed : unresolvable;
      to.names.push(names[k] as string);
      to.reasons.push(reasons[k] as string);
    }
    // Frozen: handed out as answers, remembered by the routes and sent back by prioritize.
    this.passed = Object.freeze(passed);
    this.passedOrdinals = passedOrdinals;
    this.passedScores = passedScores;
    this.failed = failed;
    this.unresolvable = unresolvable;
  }
}

function sameScore(a: number, b: number): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}
