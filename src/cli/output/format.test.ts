import { describe, expect, it } from 'vitest';
import { outputOf, render, type View } from './format.js';
import { parseTemplate } from './template.js';

const view: View<{ id: string; count: number }> = {
  items: [{ id: 'a', count: 1 }, { id: 'b', count: 2 }],
  name: (x) => `thing/${x.id}`,
  table: ({ wide, headers }) => `${headers ? 'ID\n' : ''}a${wide ? ' wide' : ''}\nb${wide ? ' wide' : ''}`,
};

describe('the output flags', () => {
  it('--json is -o json; nothing asked is the table, with its headers', () => {
    expect(outputOf({ json: true })).toEqual({ kind: 'json' });
    expect(outputOf({ json: true, output: 'json' })).toEqual({ kind: 'json' });
    expect(outputOf({})).toEqual({ kind: 'table', headers: true });
    expect(outputOf({ output: 'wide', headers: false })).toEqual({ kind: 'wide', headers: false });
  });

  it('refuses flags that contradict each other', () => {
    expect(() => outputOf({ json: true, output: 'yaml' })).toThrow(/--json is -o json; it cannot be combined with -o yaml/);
    expect(() => outputOf({ format: parseTemplate('{{.ID}}'), output: 'name' })).toThrow(/--format .* cannot be combined with -o name/);
    expect(() => outputOf({ format: parseTemplate('{{.ID}}'), json: true })).toThrow(/cannot be combined with --json/);
  });

  it.each([
    ['json', { kind: 'json' }, '[\n  {\n    "id": "a",\n    "count": 1\n  },\n  {\n    "id": "b",\n    "count": 2\n  }\n]'],
    ['yaml', { kind: 'yaml' }, '- id: a\n  count: 1\n- id: b\n  count: 2'],
    ['name', { kind: 'name' }, 'thing/a\nthing/b'],
    ['table', { kind: 'table', headers: true }, 'ID\na\nb'],
    ['wide without headers', { kind: 'wide', headers: false }, 'a wide\nb wide'],
    ['a template', { kind: 'template', template: parseTemplate('{{.ID}}={{.Count}}'), headers: true }, 'a=1\nb=2'],
  ] as const)('renders %s', async (_, output, expected) => {
    expect(await render(output, view)).toBe(expected);
  });

  it('prints `data` rather than the items where a command gives it (one object, not a list)', async () => {
    expect(await render({ kind: 'yaml' }, { ...view, data: { at: 1, gpus: [] } })).toBe('at: 1\ngpus: []');
  });
});
