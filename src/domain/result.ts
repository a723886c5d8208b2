/** A problem with one field of user input: where, what kind (stable), and a sentence for people. */
export interface Issue {
  /** Dotted path of the offending field as the user named it, e.g. `memory` or `selectors.uuids`. */
  readonly field: string;
  readonly code: IssueCode;
  readonly message: string;
}

export type IssueCode =
  | 'empty'
  | 'malformed'
  | 'unknownUnit'
  | 'ambiguousUnit'
  | 'negative'
  | 'zero'
  | 'notInteger'
  | 'outOfRange'
  | 'conflict'
  | 'exceedsCapacity'
  /** The hardware here cannot do what was asked (sm-partition on a pre-Hopper GPU). */
  | 'unsupported'
  | 'unknownValue';

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly issues: readonly Issue[] };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(field: string, code: IssueCode, message: string): Result<T> {
  return { ok: false, issues: [{ field, code, message }] };
}

/** Joins issues into one line for a terminal: `memory: unknown unit "Xi" ...; cores: ...`. */
export function describeIssues(issues: readonly Issue[]): string {
  return issues.map((i) => `${i.field}: ${i.message}`).join('; ');
}
