import type * as net from 'node:net';
import type { SocketFrameChannel } from './socket-frame-channel';
import type { FrameServer } from './transport';

/**
 * @internal The primary's listening endpoint of a socket transport (Unix socket or HTTP): the server
 * plus the channels it handed out, which `server.close()` alone leaves open. `release` runs first on
 * close (unlink the socket file, drop idle HTTP connections); what it throws rejects the close, after
 * the server and the channels were closed all the same.
 */
export class SocketFrameServer implements FrameServer {
  private closing: Promise<void> | undefined;

  constructor(
    readonly address: string,
    private readonly server: net.Server,
    private readonly channels: Set<SocketFrameChannel>,
    private readonly release: () => void = () => undefined,
  ) {}

  /** Stops accepting, runs `release`, destroys every channel; resolves once the server closed. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve, reject) => {
      try {
        this.release();
      } catch (error) {
        reject(error as Error);
      }
      this.server.close(() => resolve());
      for (const channel of [...this.channels]) channel.destroy();
    });
    return this.closing;
  }
}
