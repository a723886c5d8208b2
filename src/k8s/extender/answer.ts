/**
 * The extender's answers before they are written as JSON (reply-bytes.ts) or made objects
 * (wire.ts): lists, not objects keyed by node name. Apart from wire.ts so that the writer and
 * the wire format do not import each other.
 */

/**
 * A FailedNodesMap as two lists of the same length (node, why): at 5,000 nodes a pod, an object
 * keyed by node name is the slowest thing to build and to serialize, and few reasons differ.
 */
export interface NodeReasons {
  readonly names: string[];
  readonly reasons: string[];
}

/** ExtenderFilterResult before it is encoded (encodeFilterAnswer) or made objects (filterResultOf). */
export interface FilterAnswer {
  readonly nodes: { items: unknown[] } | null;
  readonly nodeNames: readonly string[] | null;
  readonly failed: NodeReasons;
  readonly unresolvable: NodeReasons;
}

/** A HostPriorityList as two lists of the same length. */
export interface PriorityAnswer {
  readonly hosts: readonly string[];
  readonly scores: ArrayLike<number>;
}
