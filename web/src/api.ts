/**
 * The daemon's API as the page calls it: same origin, the bearer token the user gave (kept in
 * sessionStorage: gone when the tab closes), errors as the API's `{error: {code, message}}`.
 * Streams use fetch() and a reader, since EventSource cannot send the Authorization header.
 */

const TOKEN_KEY = 'gpushare.token';

export const session = {
  token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  save(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** A refusal or failure, with the API's stable code (`GS_ERR_FORBIDDEN`) when it gave one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The API root: `/ui/` is the dashboard's, the API is at the origin's root. */
const API_ROOT = new URL('/', location.href).origin;

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = session.token();
  return token === null ? extra : { ...extra, authorization: `Bearer ${token}` };
}

async function failure(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // not the API's error body: keep the status line
  }
  return new ApiError(res.status, code, message);
}

/** Any request; `path` starts with /v1/. */
export async function request(method: string, path: string, signal?: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(API_ROOT + path, { method, headers: headers(), signal: signal ?? null, cache: 'no-store' });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'GS_ERR_DAEMON_UNREACHABLE', 'the daemon does not answer');
  }
  if (!res.ok) throw await failure(res);
  return res;
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await (await request('GET', path, signal)).json()) as T;
}

/** The JSON, or null where the daemon has no such endpoint (a feature this daemon lacks) or refuses the query. */
export async function getOptional<T>(path: string, signal?: AbortSignal): Promise<T | null> {
  try {
    return await getJson<T>(path, signal);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 400)) return null;
    throw err;
  }
}

export async function post<T>(path: string): Promise<T> {
  return (await (await request('POST', path)).json()) as T;
}

/**
 * Reads an NDJSON stream until it ends, calling `onValue` with each parsed line. Resolves when the
 * daemon ends it; rejects on a refusal or a broken connection (the caller decides whether to retry).
 */
export async function readNdjson<T>(path: string, onValue: (value: T) => void, signal: AbortSignal, accept = 'application/x-ndjson'): Promise<void> {
  let res: Response;
  try {
    res = await fetch(API_ROOT + path, { headers: headers({ accept }), signal, cache: 'no-store' });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'GS_ERR_DAEMON_UNREACHABLE', 'the daemon does not answer');
  }
  if (!res.ok) throw await failure(res);
  if (res.body === null) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += value;
    let nl = rest.indexOf('\n');
    while (nl >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line.trim() !== '') onValue(JSON.parse(line) as T);
      nl = rest.indexOf('\n');
    }
  }
}
