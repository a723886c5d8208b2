/**
 * The plugin's link with the kubelet: it serves the DevicePlugin service on its socket in the
 * kubelet's device-plugin directory and registers at the kubelet's socket there, and keeps both
 * true as the kubelet restarts. A restarting kubelet deletes every socket in that directory
 * (ours included) and creates its own again; so the directory is watched (fs.watch, plus a slow
 * poll because fs.watch can miss events or fail on some filesystems), and on any change: our
 * socket gone or replaced -> serve again; the kubelet's socket new (another inode or ctime) ->
 * register again. A failed registration is retried on the next change or poll.
 */
import { credentials, Server, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { removeFile } from '../cdi/write.js';
import { bindUnix, shutdown } from '../dra/kubelet-host.js';
import type { PluginLog } from '../dra/kubelet-plugin.js';
import { API_VERSION, devicePluginProtos, KUBELET_SOCKET } from './protos.js';

export interface KubeletLinkOptions {
  readonly dir: string;
  /** Our socket's file name in `dir` (what Register's endpoint says). */
  readonly socketName: string;
  readonly resourceName: string;
  readonly options: { readonly pre_start_required: boolean; readonly get_preferred_allocation_available: boolean };
  readonly service: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
  /** The safety-net poll's period. */
  readonly pollMs: number;
  readonly log: PluginLog;
  /** Called when the server is replaced: the old one's streams are gone. */
  readonly onServe?: () => void;
}

export type RegistrationState = { readonly state: 'waiting' } | { readonly state: 'registered'; readonly count: number } | { readonly state: 'failed'; readonly error: string };

export class KubeletLink {
  readonly socket: string;
  private readonly kubeletSocket: string;
  private server: Server | null = null;
  private servedFile = '';
  private registeredTo = '';
  private registrations = 0;
  private state: RegistrationState = { state: 'waiting' };
  private watcher: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(private readonly o: KubeletLinkOptions) {
    this.socket = join(o.dir, o.socketName);
    this.kubeletSocket = join(o.dir, KUBELET_SOCKET);
  }

  /** Serves, registers if the kubelet is there (else waits for it), and starts watching. */
  async start(): Promise<void> {
    try {
      this.watcher = watch(this.o.dir, () => this.kick());
      this.watcher.on('error', (e) => this.o.log.error('watching the device-plugin directory failed; the poll goes on', { dir: this.o.dir, error: e.message }));
    } catch (e) {
      this.o.log.error('cannot watch the device-plugin directory; polling it', { dir: this.o.dir, error: (e as Error).message });
    }
    this.poll = setInterval(() => this.kick(), this.o.pollMs);
    this.poll.unref();
    await this.reconcile();
  }

  registration(): RegistrationState {
    return this.state;
  }

  /** Runs a reconcile now (or once more after the one running). */
  kick(): Promise<void> {
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.once();
        } while (this.again && !this.stopped);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  async reconcile(): Promise<void> {
    await this.kick();
  }

  private async once(): Promise<void> {
    if (this.stopped) return;
    if (fileKey(this.socket) !== this.servedFile || this.server === null) {
      await this.serve();
      this.registeredTo = ''; // the kubelet's stream to the old socket is gone: it must hear from us again
    }
    const kubelet = fileKey(this.kubeletSocket);
    if (kubelet === '') {
      if (this.registeredTo !== '') this.o.log.info('the kubelet\'s socket is gone: waiting for it to come back', { socket: this.kubeletSocket });
      this.registeredTo = '';
      if (this.state.state !== 'failed') this.state = { state: 'waiting' };
      return;
    }
    if (kubelet === this.registeredTo) return;
    try {
      await this.register();
      this.registeredTo = kubelet;
      this.registrations += 1;
      this.state = { state: 'registered', count: this.registrations };
      this.o.log.info('registered with the kubelet', { resource: this.o.resourceName, endpoint: this.o.socketName, times: this.registrations });
    } catch (e) {
      this.state = { state: 'failed', error: (e as Error).message };
      this.o.log.error('registering with the kubelet failed; retrying on the next change or poll', { socket: this.kubeletSocket, error: (e as Error).message });
    }
  }

  private async serve(): Promise<void> {
    const old = this.server;
    this.server = null;
    if (old !== null) old.forceShutdown();
    const server = new Server();
    server.addService(this.o.service, this.o.implementation);
    await bindUnix(server, this.socket);
    this.server = server;
    this.servedFile = fileKey(this.socket);
    this.o.onServe?.();
    this.o.log.info('serving the device-plugin API', { socket: this.socket });
  }

  private async register(): Promise<void> {
    const client = new (devicePluginProtos().registration)(`unix:${this.kubeletSocket}`, credentials.createInsecure());
    try {
      await new Promise<void>((resolve, reject) => {
        client['Register']!(
          { version: API_VERSION, endpoint: this.o.socketName, resource_name: this.o.resourceName, options: this.o.options },
          { deadline: Date.now() + 5000 },
          (error: Error | null) => (error ? reject(error) : resolve()),
        );
      });
    } finally {
      client.close();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    if (this.poll !== null) clearInterval(this.poll);
    await this.running;
    if (this.server !== null) {
      const key = fileKey(this.socket);
      await shutdown(this.server);
      if (key === this.servedFile) removeFile(this.socket); // ours, not a newer plugin's
    }
    this.server = null;
  }
}

/** A file's identity (inode and change time), or '' when it is not there. */
function fileKey(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.ctimeMs}`;
  } catch {
    return '';
  }
}
