/**
 * The serving certificate, kept current: cert-manager (or whoever keeps the Secret) rotates
 * it, and the kubelet swaps the mounted files (a symlink flip, which inotify watchers of the
 * file itself miss), so the files are re-read on an interval and served once they change and
 * form a usable pair. A pair that does not load (half written, mismatched) is reported and the
 * previous one kept serving.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

export interface CertificatePair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Reads both files and checks that they make a TLS context (the key matches the certificate). */
export async function loadCertificatePair(files: CertificateFiles): Promise<CertificatePair> {
  const [cert, key] = await Promise.all([readPem(files.cert, 'tls.cert'), readPem(files.key, 'tls.key')]);
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new Error(`gpushare: ${files.cert} and ${files.key} are not a usable certificate and key: ${(e as Error).message}`, { cause: e });
  }
  return { cert, key };
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new Error(`gpushare: ${what} ${path} cannot be read: ${(e as Error).message}`, { cause: e });
  }
}

export interface CertificateWatch {
  /** Checks the files now (the interval does this too); resolves true when a new pair was applied. */
  check(): Promise<boolean>;
  stop(): void;
}

/**
 * Polls `files` every `intervalMs`; a pair whose bytes differ from the one served and that
 * loads is handed to `apply`. `report` hears a pair that failed to load or apply (once per
 * distinct content, not every interval).
 */
export function watchCertificates(
  files: CertificateFiles,
  current: CertificatePair,
  apply: (pair: CertificatePair) => void,
  report: (event: { kind: 'rotated' } | { kind: 'rejected'; message: string }) => void,
  intervalMs: number,
): CertificateWatch {
  let served = current;
  let lastRejected: string | null = null;
  let running: Promise<boolean> | null = null;
  const once = async (): Promise<boolean> => {
    let cert: Buffer;
    let key: Buffer;
    try {
      [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)]);
    } catch {
      return false; // mid-swap, or the Secret's volume is being updated: the next round sees it
    }
    if (cert.equals(served.cert) && key.equals(served.key)) return false;
    const fingerprint = `${cert.toString('base64')}|${key.toString('base64')}`;
    try {
      const pair = await loadCertificatePair(files);
      apply(pair);
      served = pair;
      lastRejected = null;
      report({ kind: 'rotated' });
      return true;
    } catch (e) {
      if (lastRejected !== fingerprint) report({ kind: 'rejected', message: (e as Error).message });
      lastRejected = fingerprint;
      return false;
    }
  };
  const check = (): Promise<boolean> => {
    running ??= once().finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
