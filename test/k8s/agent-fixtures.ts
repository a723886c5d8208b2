/** Shared by the node agent's tests: a logger that keeps every line. */
import type { AgentLog } from '../../src/k8s/agent/log.js';

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** An AgentLog writing into `lines` (cleared by the caller between tests). */
export function recordingLog(): { log: AgentLog; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (fields: Record<string, unknown>, message: string): void => {
    lines.push({ level, fields, message });
  };
  return { log: { info: at('info'), warn: at('warn'), error: at('error') }, lines };
}
