/**
 * A value a client sent, as an error message may quote it: at most `max` characters, then an
 * ellipsis and how long it was. An error never echoes a large value back (a 1 MB bad value
 * used to come back twice), nor a control character that would garble a terminal or a log.
 */
export function shown(value: string, max = 100): string {
  const printable = value.length > max ? value.slice(0, max) : value;
  // eslint-disable-next-line no-control-regex
  const clean = printable.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\u0000' ? '\\0' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  return value.length > max ? `${clean}… (${value.length} characters)` : clean;
}
