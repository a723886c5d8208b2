import { describe, expect, it } from 'vitest';
import { encodeFilterAnswer, encodePriorities, filterResultOf, hostPrioritiesOf, splitNodeNames } from './wire.js';

const pod = { metadata: { name: 'p', annotations: { tricky: ',"NodeNames":["x"]}', quote: 'a"b\\c' } }, spec: { containers: [{ name: 'c' }] } };

describe('splitNodeNames: the node list apart from the rest, or nothing', () => {
  const cases: [string, string, boolean][] = [
    ['the Go layout', JSON.stringify({ Pod: pod, Nodes: null, NodeNames: ['a', 'b.c', 'd-1'] }), true],
    ['the list the only member', JSON.stringify({ NodeNames: ['a'] }), false],
    ['an empty list', JSON.stringify({ Pod: pod, Nodes: null, NodeNames: [] }), true],
    ['names with escapes', JSON.stringify({ Pod: pod, NodeNames: ['a"],"x":[', 'b\\', '\u00e9\u0001'] }), true],
    ['the list not last', JSON.stringify({ Pod: pod, NodeNames: ['a'], Nodes: null }), false],
    ['spaces', JSON.stringify({ Pod: pod, Nodes: null, NodeNames: ['a'] }, null, 1), false],
    ['a NodeNames inside a string only', JSON.stringify({ Pod: { metadata: { annotations: { x: ',"NodeNames":["x"]}' } } }, Nodes: null }), false],
    ['the list twice (the last counts)', `{"NodeNames":["old"],"Pod":{}${',"NodeNames":["new"]}'}`, true],
    ['NodeNames null', JSON.stringify({ Pod: pod, Nodes: null, NodeNames: null }), false],
  ];
  it.each(cases)('%s', (_, text, splits) => {
    const split = splitNodeNames(Buffer.from(text));
    expect(split !== null).toBe(splits);
    if (split !== null) expect({ ...split.rest, NodeNames: JSON.parse(split.names.toString()) as unknown }).toEqual(JSON.parse(text));
  });

  it('takes trailing spaces and a byte view inside a larger buffer', () => {
    const text = JSON.stringify({ Pod: pod, Nodes: null, NodeNames: ['a', 'b'] });
    const big = Buffer.from(`xx${text}\n yy`);
    const split = splitNodeNames(big.subarray(2, big.length - 2));
    expect(split && { ...split.rest, NodeNames: JSON.parse(split.names.toString()) as unknown }).toEqual(JSON.parse(text));
  });

  it('never splits text that is not JSON', () => {
    for (const text of ['{"Pod":{,"NodeNames":["a"]}', '{"Pod":"x,"NodeNames":["a"]}', ',"NodeNames":["a"]}', '{"Pod":{}},"NodeNames":["a"]}']) {
      expect(() => JSON.parse(text)).toThrow();
      const split = splitNodeNames(Buffer.from(text));
      if (split !== null) expect(() => JSON.parse(split.names.toString())).toThrow();
    }
  });
});

describe('the answers written by hand are JSON.stringify of the objects', () => {
  it('filter', () => {
    const answer = { nodes: null, nodeNames: ['a', 'b"'], failed: { names: ['c', 'd\\'], reasons: ['full "x"', 'full "x"'] }, unresolvable: { names: [], reasons: [] } };
    expect(encodeFilterAnswer(answer)).toBe(JSON.stringify(filterResultOf(answer)));
    expect(encodeFilterAnswer({ ...answer, nodeNames: null, nodes: { items: [{ metadata: { name: 'a' } }] } })).toBe(JSON.stringify(filterResultOf({ ...answer, nodeNames: null, nodes: { items: [{ metadata: { name: 'a' } }] } })));
  });

  it('prioritize', () => {
    const answer = { hosts: ['a', 'b\u2028'], scores: new Uint8Array([10, 0]) };
    expect(encodePriorities(answer)).toBe(JSON.stringify(hostPrioritiesOf(answer)));
    expect(encodePriorities({ hosts: [], scores: [] })).toBe('[]');
  });
});
