/**
 * A memo of per-node results: for one (policy, request shape, workload model) the best score a
 * node offers and its tied GPU sets, valid while the node's state is the same object.
 *
 * NodeStates are immutable and a placement replaces only the node it lands on, so between two
 * decisions of the same shape every other node's answer is unchanged: a decision then costs a
 * lookup per node plus a real evaluation of the few nodes that changed. The results do not
 * depend on the tie-break draw (tiebreak.ts ranks the cached ties per decision), so the memo
 * gives exactly the decisions of a full scan (engine.fastpath.test.ts holds it to that).
 *
 * Owned by the caller (one per cluster or replay) and passed in ScheduleOptions; the engine
 * keeps no state of its own between decisions.
 */
import type { NodeRejection, NodeState } from './types.js';
import type { WorkloadModel } from './workload.js';

/** One shape's answers, by node position. */
export interface MemoTable {
  /** The node state each answer is for (a different object: stale). */
  readonly states: (NodeState | undefined)[];
  readonly scores: number[];
  /** Tied GPU sets, flattened with the request's GPU count as stride; null: the node cannot take it. */
  readonly ties: (readonly number[] | null)[];
  /**
   * Why the node cannot take it, GPU by GPU, where evaluateNodes explained it for this state
   * (the extender's filter explains every refused node of every pod: a node unchanged since
   * keeps its reason). Undefined: not explained yet.
   */
  readonly reasons: (NodeRejection | undefined)[];
}

export class DecisionMemo {
  private readonly tables = new Map<string, MemoTable>();
  private readonly workloadIds = new WeakMap<WorkloadModel, number>();
  private nextWorkload = 1;

  /** @param maxTables shapes kept; the least recently used goes first (a table is one slot per node). */
  constructor(private readonly maxTables = 256) {}

  /** The table for `key`, most recently used from now on. */
  table(key: string): MemoTable {
    let t = this.tables.get(key);
    if (t) {
      // Map keeps insertion order: re-inserting marks it most recent.
      this.tables.delete(key);
    } else {
      t = { states: [], scores: [], ties: [], reasons: [] };
      if (this.tables.size >= this.maxTables) {
        const oldest = this.tables.keys().next().value;
        if (oldest !== undefined) this.tables.delete(oldest);
      }
    }
    this.tables.set(key, t);
    return t;
  }

  /** A number that names one workload model object (fixed models share version numbers). */
  workloadId(model: WorkloadModel | null): number {
    if (model === null) return 0;
    let id = this.workloadIds.get(model);
    if (id === undefined) {
      id = this.nextWorkload++;
      this.workloadIds.set(model, id);
    }
    return id;
  }

  /** How many shapes are cached (tests). */
  get size(): number {
    return this.tables.size;
  }
}
