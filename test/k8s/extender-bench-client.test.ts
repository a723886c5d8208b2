import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bestHost, spliceBody, valueEnd } from '../../bench/lib/extender-client.js';
import { ReplyWriter } from '../../src/k8s/extender/reply-bytes.js';
import type { FilterAnswer } from '../../src/k8s/extender/wire.js';

// The bench's kube-scheduler stand-in makes prioritize's body from filter's reply by splicing
// bytes, and finds the best host by a byte scan: both must give what parsing would.
const text = fc.string({ unit: 'binary', maxLength: 12 });
const reasons = fc.array(fc.tuple(text, fc.constantFrom('full', 'no "room" ]}', '')), { maxLength: 6 });

describe("the bench client's byte work equals the parsed way", () => {
  it("prioritize's body spliced from filter's reply is JSON.stringify of { Pod, Nodes: null, NodeNames: passed }", () => {
    const writer = new ReplyWriter();
    fc.assert(
      fc.property(fc.array(text, { maxLength: 8 }), fc.option(fc.array(text, { maxLength: 8 }), { nil: null }), reasons, text, (asked, passed, failed, podText) => {
        // A pod whose strings hold the member's own text: escaped inside a string, never matched.
        const pod = { metadata: { name: podText, annotations: { a: ',"NodeNames":["x"]}', b: podText } } };
        const filterBody = Buffer.from(JSON.stringify({ Pod: pod, Nodes: null, NodeNames: asked }));
        const answer: FilterAnswer = { nodes: null, nodeNames: passed, failed: { names: failed.map(([n]) => n), reasons: failed.map(([, r]) => r) }, unresolvable: { names: [], reasons: [] } };
        const reply = writer.filter(answer).bytes;
        expect(spliceBody(filterBody, reply).toString('utf8')).toBe(JSON.stringify({ Pod: pod, Nodes: null, NodeNames: passed }));
      }),
      { numRuns: 300 },
    );
  });

  it('the best host is the first of the highest scores, null for none', () => {
    const writer = new ReplyWriter();
    fc.assert(
      fc.property(fc.array(fc.tuple(text, fc.integer({ min: 0, max: 10 })), { maxLength: 10 }), (entries) => {
        const reply = writer.priorities({ hosts: entries.map(([h]) => h), scores: entries.map(([, s]) => s) });
        const want = entries.length === 0 ? null : entries.reduce((a, b) => (b[1] > a[1] ? b : a))[0];
        expect(bestHost(reply)).toBe(want);
      }),
      { numRuns: 300 },
    );
  });

  it('a value that is neither an array nor null, or an array that does not end, is an error', () => {
    expect(() => valueEnd(Buffer.from('{"a":1}'), 0)).toThrow(/not an array/);
    expect(() => valueEnd(Buffer.from('["a", "]"'), 0)).toThrow(/does not end/);
    expect(valueEnd(Buffer.from('["]", "\\"]"],'), 0)).toBe(12);
    expect(() => spliceBody(Buffer.from('{"Pod":{}}'), Buffer.from('{"Nodes":null,"NodeNames":[]}'))).toThrow(/no NodeNames/);
  });
});
