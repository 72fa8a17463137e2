import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertMaxFrameBytes } from './frame-codec';
import { SocketFrameChannel } from './socket-frame-channel';
import { SocketFrameServer } from './socket-frame-server';
import type { ClusterTransport, FrameChannel, FrameServer } from './transport';

/**
 * The longest socket path used as is. The kernel's limit is 107 bytes on Linux and 103 on macOS;
 * 100 leaves room for the temporary name the socket is first bound at.
 */
export const MAX_SOCKET_PATH_BYTES = 100;

/** The longest path a Unix socket can be bound at on every supported system (macOS: 103 bytes). */
const KERNEL_SOCKET_PATH_BYTES = 103;

/**
 * The default socket of the primary for a database file: `<database>.wc.sock` next to it, or, when
 * that path is too long for a Unix socket, `<tmpdir>/wc-<sha256 of the database's real path, 16 hex>.sock`
 * (every process opening the same file derives the same name).
 * @param databasePath The SQLite database file (relative paths resolve against the working directory).
 */
export function defaultSocketPath(databasePath: string): string {
  const resolved = path.resolve(databasePath);
  const beside = `${resolved}.wc.sock`;
  if (Buffer.byteLength(beside) <= MAX_SOCKET_PATH_BYTES) return beside;
  return path.join(
    os.tmpdir(),
    `wc-${createHash('sha256').update(realPathOf(resolved)).digest('hex').slice(0, 16)}.sock`,
  );
}

/** The real path of a file that may not exist yet: its directory's real path plus its name. */
function realPathOf(resolved: string): string {
  try {
    return fs.realpathSync.native(resolved);
  } catch {
    try {
      return path.join(fs.realpathSync.native(path.dirname(resolved)), path.basename(resolved));
    } catch {
      return resolved;
    }
  }
}

/** Options of a {@link UnixSocketTransport}. */
export interface UnixSocketTransportOptions {
  /** The socket file (see {@link defaultSocketPath}). */
  path: string;
  /** The largest JSON body of a frame, both ways (see `maxFrameBytesFor`). */
  maxFrameBytes: number;
}

/**
 * The cluster's transport on one host: the primary listens on a Unix domain socket that only its
 * owner may connect to (mode 0600), secondaries connect to it.
 *
 * The socket is bound at a fresh temporary name in the same directory, restricted to 0600, then
 * renamed over the final path: nobody can ever connect to the final path while its mode is wider,
 * a stale socket is replaced atomically, and closing the server can never unlink a socket a newer
 * primary has put in its place (libuv unlinks the path it bound when a server closes, which here is
 * the temporary name, already gone).
 */
export class UnixSocketTransport implements ClusterTransport {
  readonly address: string;
  private readonly path: string;
  private readonly maxFrameBytes: number;
  private nextPeer = 1;

  /**
   * @throws {RangeError} when `path` is empty or `maxFrameBytes` is not an integer from 1 to 2^32 - 1.
   */
  constructor(options: UnixSocketTransportOptions) {
    if (typeof options.path !== 'string' || options.path === '') {
      throw new RangeError(
        `path must be a non-empty string (received ${String(options.path)}, ${typeof options.path})`,
      );
    }
    assertMaxFrameBytes(options.maxFrameBytes);
    this.path = path.resolve(options.path);
    this.maxFrameBytes = options.maxFrameBytes;
    this.address = `unix:${this.path}`;
  }

  /**
   * Listens on the socket path, replacing a stale socket file left by a dead primary. Only the
   * holder of the primary lock may call it.
   * @throws {Error} when something other than a socket exists at the path (it is left alone), or
   *   when binding fails (`code` kept).
   */
  async listen(onChannel: (channel: FrameChannel) => void): Promise<FrameServer> {
    this.refuseNonSocket();
    const channels = new Set<SocketFrameChannel>();
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const channel = this.channelFor(socket);
      channels.add(channel);
      channel.onClose(() => channels.delete(channel));
      onChannel(channel);
    });
    const bindPath = this.temporaryBindPath();
    try {
      await listenOwnerOnly(server, bindPath);
      fs.chmodSync(bindPath, 0o600);
      this.refuseNonSocket();
      fs.renameSync(bindPath, this.path);
    } catch (error) {
      server.close();
      throw this.wrap(error, 'cannot listen on');
    }
    const { ino, dev } = fs.statSync(this.path);
    return new SocketFrameServer(this.address, server, channels, () => {
      // Unlink only our own socket: a newer primary may have replaced it.
      try {
        const now = fs.lstatSync(this.path);
        if (now.ino === ino && now.dev === dev) fs.unlinkSync(this.path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    });
  }

  /**
   * Connects to the primary.
   * @throws {Error} with the errno `code` (`ENOENT`: no socket file, `ECONNREFUSED`: nobody listens,
   *   `ETIMEDOUT`: no answer within `timeoutMs`).
   */
  connect(timeoutMs: number): Promise<FrameChannel> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path: this.path, allowHalfOpen: true });
      const timer = setTimeout(() => {
        socket.destroy();
        const error: NodeJS.ErrnoException = new Error(
          `cannot connect to the primary at ${this.address}: no answer within ${timeoutMs} ms`,
        );
        error.code = 'ETIMEDOUT';
        reject(error);
      }, timeoutMs);
      const onError = (error: Error): void => {
        clearTimeout(timer);
        reject(this.wrap(error, 'cannot connect to the primary at'));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(this.channelFor(socket));
      });
    });
  }

  private channelFor(socket: net.Socket): SocketFrameChannel {
    return new SocketFrameChannel(socket, {
      peer: `${this.address}#${this.nextPeer++}`,
      maxFrameBytes: this.maxFrameBytes,
    });
  }

  /** Never replaces a user's file: only a socket (a stale one) may be at the path. */
  private refuseNonSocket(): void {
    let stats: fs.Stats;
    try {
      stats = fs.lstatSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.wrap(error, 'cannot inspect');
    }
    if (!stats.isSocket()) {
      const error: NodeJS.ErrnoException = new Error(
        `cannot listen on ${this.address}: a file that is not a socket exists at that path; remove it or choose another cluster socketPath`,
      );
      error.code = 'EEXIST';
      throw error;
    }
  }

  /** A fresh name in the socket's directory (a rename must stay on one file system), if it fits. */
  private temporaryBindPath(): string {
    const candidate = path.join(path.dirname(this.path), `.wc-${randomBytes(6).toString('hex')}`);
    if (Buffer.byteLength(candidate) <= KERNEL_SOCKET_PATH_BYTES) return candidate;
    // Too long for the kernel (a very long directory): bind at the final path itself, after removing
    // the stale socket. Then closing the server unlinks the path whatever socket is there by then.
    try {
      fs.unlinkSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw this.wrap(error, 'cannot remove the stale socket');
    }
    return this.path;
  }

  private wrap(error: unknown, what: string): Error {
    const cause = error as NodeJS.ErrnoException;
    const wrapped: NodeJS.ErrnoException = new Error(`${what} ${this.address}: ${cause.message}`, { cause });
    if (cause.code !== undefined) wrapped.code = cause.code;
    return wrapped;
  }
}

/**
 * Binds `server` at `bindPath` with the process umask at 0o177, so the socket file is created 0600.
 * Node binds synchronously inside `listen()`, so the umask is restored before any other code runs.
 * In a worker thread `process.umask(mask)` throws; the caller's chmod then closes the gap, before the
 * socket is renamed to where anyone looks for it.
 */
function listenOwnerOnly(server: net.Server, bindPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    let previous: number | undefined;
    try {
      previous = process.umask(0o177);
    } catch {
      previous = undefined;
    }
    try {
      // exclusive: under node:cluster a worker's listen would otherwise be owned by the cluster master.
      server.listen({ path: bindPath, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
  });
}
