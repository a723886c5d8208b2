/**
 * The extender's answers before they are written as JSON (reply-bytes.ts) or made objects
 * (wire.ts): lists, not objects keyed by node name, and the one comparison of such lists.
 * Apart from wire.ts so that the writer and the wire format do not import each other.
 */

/**
 * A FailedNodesMap as two lists of the same length (node, why): at 5,000 nodes a pod, an object
 * keyed by node name is the slowest thing to build and to serialize, and few reasons differ.
 */
export interface NodeReasons {
  readonly names: string[];
  readonly reasons: string[];
}

/** A node list's verdicts (verdicts.ts), position by position. */
export const PASSED = 0;
export const FAILED = 1;
export const UNRESOLVABLE = 2;
/** A position's prioritize score where it did not pass (PriorityAnswer.byPosition). */
export const NO_POSITION_SCORE = 255;

/**
 * filter's answer for a node list kept between pods (verdicts.ts): the kind (PASSED, FAILED,
 * UNRESOLVABLE) and reason ('' where passed) of each name of the list, in its order. The reply
 * writer keeps the bytes it wrote for a table and rewrites only the positions that changed.
 * Read it when it is given: the extender's next call may change it.
 */
export interface ListVerdicts {
  readonly names: readonly string[];
  readonly kinds: Uint8Array;
  // The answer's lists: new objects whenever a verdict changes, so an answer whose lists are
  // these very objects is the table's now (the writer checks it, or the answer's
  // verdictsRevision, before it reads the table).
  readonly passed: readonly string[];
  readonly failed: NodeReasons;
  readonly unresolvable: NodeReasons;
  readonly reasons: readonly string[];
  /** Bumped whenever verdicts may have changed (a table kept between pods); absent: unknown. */
  readonly revision?: number;
  /**
   * The positions whose verdict may have changed since `revision` (a superset, ascending), or
   * null when that is too far back to say: a writer then compares every position.
   */
  changedSince?(revision: number): readonly number[] | null;
  /** Whether `names` are exactly the passed names in order, without making the passed list; absent: compared with `passed`. */
  passedIs?(names: readonly string[]): boolean;
}

/** ExtenderFilterResult before it is encoded (encodeFilterAnswer) or made objects (filterResultOf). */
export interface FilterAnswer {
  readonly nodes: { items: unknown[] } | null;
  readonly nodeNames: readonly string[] | null;
  readonly failed: NodeReasons;
  readonly unresolvable: NodeReasons;
  /** Where the answer is a kept table's: nodeNames, failed and unresolvable are its lists (same order). */
  readonly verdicts?: ListVerdicts;
  /**
   * With `verdicts`: the table's revision the answer's lists are (VerdictTable.answer: its
   * lists are not the table's objects, and its refused lists are made only when read). A
   * writer whose table is still at this revision writes the table's bytes without reading them.
   */
  readonly verdictsRevision?: number;
}

/** A HostPriorityList as two lists of the same length. */
export interface PriorityAnswer {
  readonly hosts: readonly string[];
  readonly scores: ArrayLike<number>;
  /** Where `hosts` are exactly the PASSED names of this table, in its order. */
  readonly verdicts?: ListVerdicts;
  /** With `verdicts`: the same scores by position of the table's list (the writer need not map them back). */
  readonly positions?: PositionScores;
}

/**
 * prioritize's scores over a kept table's list, by position (VerdictTable.scaledScores), and
 * which positions may have another score than in the table's earlier scores numbered `from`:
 * a writer that wrote those looks at only these.
 */
export interface PositionScores {
  /** 0..10 at each position that passed, NO_POSITION_SCORE elsewhere; never changed once given. */
  readonly byPosition: Uint8Array;
  /** Numbers these scores among the table's. */
  readonly serial: number;
  /** The earlier scores `changed` is relative to (-1: none). */
  readonly from: number;
  /** Ascending positions whose score may differ from those of `from` (a superset), or null: any may. */
  readonly changed: readonly number[] | null;
}

/** The scores of `byPosition` that are not NO_POSITION_SCORE, in position order (`count` of them). */
export function passedScores(byPosition: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let k = 0, j = 0; k < byPosition.length; k++) if (byPosition[k] !== NO_POSITION_SCORE) out[j++] = byPosition[k] as number;
  return out;
}

/** Same names in the same order. */
export function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}
