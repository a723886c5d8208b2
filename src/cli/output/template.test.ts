import { describe, expect, it } from 'vitest';
import { parseTemplate, renderTemplate } from './template.js';

const tasks = [
  { id: 'abc123', state: 'running', exitCode: null, request: { gpus: 1, memory: { kind: 'bytes', bytes: 8 } }, command: ['python', 'train.py'] },
  { id: 'def456', state: 'exited', exitCode: 3, request: { gpus: 2, memory: null }, command: ['sleep', '1'] },
];
const run = (format: string, headers = true): string => renderTemplate(parseTemplate(format), tasks, { headers });

describe('--format templates (a docker-style subset)', () => {
  /** What each form prints, for two tasks: name, template, output. */
  const forms: Record<string, [string, string]> = {
    'fields, whatever their case': ['{{.ID}} {{.State}}', 'abc123 running\ndef456 exited'],
    'null prints as nothing, numbers as written': ['{{.id}}:{{.ExitCode}}', 'abc123:\ndef456:3'],
    'nested fields': ['{{.Request.Gpus}}', '1\n2'],
    'json of a field, and of the whole item': ['{{json .Request.Memory}}|{{json .Command}}', '{"kind":"bytes","bytes":8}|["python","train.py"]\nnull|["sleep","1"]'],
    'objects without json are compact JSON': ['{{.Command}}', '["python","train.py"]\n["sleep","1"]'],
    'upper and lower': ['{{upper .State}} {{lower .ID}}', 'RUNNING abc123\nEXITED def456'],
    '\\t and \\n typed as two characters': ['{{.ID}}\\t{{.State}}', 'abc123\trunning\ndef456\texited'],
    'text alone': ['x', 'x\nx'],
    'spaces inside the braces': ['{{ .ID }}', 'abc123\ndef456'],
  };
  it.each(Object.entries(forms))('%s', (_, [format, expected]) => {
    expect(run(format)).toBe(expected);
  });

  it('{{json .}} is the whole item', () => {
    expect(JSON.parse(run('{{json .}}').split('\n')[0] ?? '')).toEqual(tasks[0]);
  });

  it('table: aligned columns with a header of the fields named as words, which --no-headers leaves out', () => {
    expect(run('table {{.ID}}\\t{{.ExitCode}}\\t{{json .Request.Gpus}}')).toBe('ID      EXIT CODE  GPUS\nabc123             1\ndef456  3          2');
    expect(run('table {{.ID}}\\t{{.State}}', false)).toBe('abc123  running\ndef456  exited');
  });

  it('an unknown field names the known ones (at its level)', () => {
    expect(() => run('{{.Name}}')).toThrow(/--format: no field "Name"; the fields are id, state, exitCode, request, command/);
    expect(() => run('{{.Request.Foo}}')).toThrow(/no field "Request.Foo"; the fields of .Request are gpus, memory/);
    expect(() => run('{{.ID.X}}')).toThrow(/no field "ID.X"; the fields of .ID are \(none: it is not an object\)/);
  });

  it.each(['{{range .}}', '{{.ID | upper}}', '{{index . 1}}', '{{ID}}', '{{.ID', '{{}}', '{{json}}', '{{.A..B}}'])('refuses what it does not know: %s', (format) => {
    expect(() => parseTemplate(format)).toThrow(/--format: /);
  });
});
