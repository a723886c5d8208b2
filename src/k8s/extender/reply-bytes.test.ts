import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FAILED, PASSED, UNRESOLVABLE, type ListVerdicts } from './answer.js';
import { ReplyWriter } from './reply-bytes.js';
import { filterResultOf, hostPrioritiesOf, type FilterAnswer } from './wire.js';

// Any text, escapes and characters outside ASCII included (a quoted name is bytes, not characters).
const text = fc.string({ unit: 'binary', maxLength: 12 });
const reasons = fc.array(fc.tuple(text, fc.constantFrom('full', 'no "room"', 'gpu \u00e9\u2028', '')), { maxLength: 8 });

describe('ReplyWriter writes JSON.stringify of the reply objects, byte for byte', () => {
  it('filter, and where its NodeNames lie', () => {
    // One writer for all runs: names and reasons quoted by an earlier reply are reused.
    const writer = new ReplyWriter();
    fc.assert(
      fc.property(fc.option(fc.array(text, { maxLength: 8 }), { nil: null }), reasons, reasons, fc.boolean(), (nodeNames, failed, unresolvable, withNodes) => {
        const a: FilterAnswer = {
          nodes: withNodes ? { items: [{ metadata: { name: 'x' } }] } : null,
          nodeNames,
          failed: { names: failed.map(([n]) => n), reasons: failed.map(([, r]) => r) },
          unresolvable: { names: unresolvable.map(([n]) => n), reasons: unresolvable.map(([, r]) => r) },
        };
        // Keys repeated in a list are repeated in the text; the object keeps one: compared only without.
        fc.pre(new Set(a.failed.names).size === a.failed.names.length && new Set(a.unresolvable.names).size === a.unresolvable.names.length);
        const { bytes, nodeNamesStart, nodeNamesEnd } = writer.filter(a);
        expect(bytes.toString('utf8')).toBe(JSON.stringify(filterResultOf(a)));
        expect(bytes.toString('utf8', nodeNamesStart, nodeNamesEnd)).toBe(JSON.stringify(nodeNames));
      }),
      { numRuns: 300 },
    );
  });

  it('prioritize, scores 0..10 and others', () => {
    const writer = new ReplyWriter();
    fc.assert(
      fc.property(fc.array(fc.tuple(text, fc.oneof(fc.integer({ min: 0, max: 10 }), fc.double())), { maxLength: 10 }), (entries) => {
        const a = { hosts: entries.map(([h]) => h), scores: entries.map(([, s]) => s) };
        expect(writer.priorities(a).toString('utf8')).toBe(JSON.stringify(hostPrioritiesOf(a)));
      }),
      { numRuns: 300 },
    );
  });

  it('filter over a kept table, call after call: entries that come before the first, go, move between parts or change their reason', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }).chain((n) => fc.tuple(fc.constant(n), fc.array(fc.array(fc.tuple(fc.constantFrom(PASSED, FAILED, UNRESOLVABLE), fc.constantFrom('full', 'no "room"', 'gpu \u00e9')), { minLength: n, maxLength: n }), { minLength: 1, maxLength: 10 }))),
        ([n, steps]) => {
          const writer = new ReplyWriter();
          const names = Array.from({ length: n }, (_, k) => `node-${k}`);
          // One table object whose verdicts change between calls, as verdicts.ts's do (no
          // revisions: the writer compares every position).
          const v: { -readonly [K in keyof ListVerdicts]: ListVerdicts[K] } = { names, kinds: new Uint8Array(n), passed: [], failed: { names: [], reasons: [] }, unresolvable: { names: [], reasons: [] }, reasons: names.map(() => '') };
          for (const step of steps) {
            const reasons = step.map(([kind, why]) => (kind === PASSED ? '' : why));
            step.forEach(([kind], k) => (v.kinds[k] = kind));
            v.reasons = reasons;
            const of = (kind: number) => ({ names: names.filter((_, k) => step[k]?.[0] === kind), reasons: reasons.filter((_, k) => step[k]?.[0] === kind) });
            v.passed = names.filter((_, k) => step[k]?.[0] === PASSED);
            v.failed = of(FAILED);
            v.unresolvable = of(UNRESOLVABLE);
            const a: FilterAnswer = { nodes: null, nodeNames: v.passed, failed: v.failed, unresolvable: v.unresolvable, verdicts: v };
            const { bytes, nodeNamesStart, nodeNamesEnd } = writer.filter(a);
            expect(bytes.toString('utf8')).toBe(JSON.stringify(filterResultOf(a)));
            expect(bytes.toString('utf8', nodeNamesStart, nodeNamesEnd)).toBe(JSON.stringify(v.passed));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("prioritize over a kept table, call after call: entries that come, go, or change their score's digits", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }).chain((n) => fc.tuple(fc.constant(n), fc.array(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 10 })), { minLength: n, maxLength: n }), { minLength: 1, maxLength: 8 }))),
        ([n, steps]) => {
          const writer = new ReplyWriter();
          const names = Array.from({ length: n }, (_, k) => `node-${k}`);
          // One table object whose verdicts change between calls, as verdicts.ts's do.
          const v: { -readonly [K in keyof ListVerdicts]: ListVerdicts[K] } = { names, kinds: new Uint8Array(n), passed: [], failed: { names: [], reasons: [] }, unresolvable: { names: [], reasons: [] }, reasons: names.map(() => '') };
          for (const step of steps) {
            step.forEach(([pass], k) => (v.kinds[k] = pass ? PASSED : FAILED));
            v.passed = names.filter((_, k) => step[k]?.[0] === true);
            const scores = step.filter(([pass]) => pass).map(([, s]) => s);
            const a = { hosts: v.passed, scores, verdicts: v };
            expect(writer.priorities(a).toString('utf8')).toBe(JSON.stringify(hostPrioritiesOf(a)));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
