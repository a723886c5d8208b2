/** The agent's logger: pino's shape (fields first, then the message), so a pino Logger is one. */
export interface AgentLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** The kubelet plugin's logger (message first) over the agent's. */
export function pluginLog(log: AgentLog, component: string): { info(message: string, fields?: Record<string, unknown>): void; error(message: string, fields?: Record<string, unknown>): void } {
  return {
    info: (message, fields) => log.info({ component, ...fields }, message),
    error: (message, fields) => log.error({ component, ...fields }, message),
  };
}
