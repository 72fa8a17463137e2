import type { Socket } from 'node:net';
import { FrameDecoder, encodeFrame } from './frame-codec';
import { FrameError } from './frame-error';
import type { Frame, FrameChannel } from './transport';

/** Options of a {@link SocketFrameChannel}. */
export interface SocketFrameChannelOptions {
  /** Who is at the other end, for logs (e.g. `unix:/tmp/app.db.wc.sock#3`). */
  peer: string;
  /** The largest JSON body of a frame, both ways (see `maxFrameBytesFor`). */
  maxFrameBytes: number;
  /** How long a closing channel waits for its last frames to flush before it destroys the socket. @default 1000 */
  closeGraceMs?: number;
}

/**
 * A {@link FrameChannel} over a stream socket (a Unix domain socket today). The socket must be
 * created with `allowHalfOpen: true`: when the peer ends its side the channel decides what to send
 * last (nothing, or a `PROTOCOL` error frame for a truncated frame) before ending its own.
 *
 * A frame the peer gets wrong (oversized, malformed, truncated, not an object) is answered with one
 * frame `{ type: 'error', code: 'PROTOCOL', reason, message }`, then the channel closes with the
 * {@link FrameError}; frames that arrived complete before it are still delivered, in order.
 */
export class SocketFrameChannel implements FrameChannel {
  readonly peer: string;
  private readonly decoder: FrameDecoder;
  private readonly maxFrameBytes: number;
  private readonly closeGraceMs: number;
  private readonly frameListeners: ((frame: Frame) => void)[] = [];
  private readonly closeListeners: ((error?: Error) => void)[] = [];
  /** Set once, by {@link finish}: every path that ends the channel goes through it. */
  private closeReason: { error?: Error } | undefined;
  private destroyTimer: NodeJS.Timeout | undefined;
  /** Whether frames sent in this tick are being held, to leave in one write at the next tick. */
  private corked = false;
  private readonly released: Promise<void>;

  constructor(
    private readonly socket: Socket,
    options: SocketFrameChannelOptions,
  ) {
    this.peer = options.peer;
    this.maxFrameBytes = options.maxFrameBytes;
    this.closeGraceMs = options.closeGraceMs ?? 1000;
    this.decoder = new FrameDecoder(options.maxFrameBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (error) => this.finish(error));
    this.released = new Promise((resolve) =>
      socket.once('close', () => {
        if (this.destroyTimer) clearTimeout(this.destroyTimer);
        this.finish(undefined);
        resolve();
      }),
    );
  }

  whenReleased(): Promise<void> {
    return this.released;
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  send(frame: Frame): boolean {
    if (this.closed) return false;
    const bytes = encodeFrame(frame, this.maxFrameBytes);
    // Frames sent in the same tick (the answers and changes of one committed batch, the requests
    // of callers submitting together) leave in one writev instead of one write each.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(bytes);
    return true;
  }

  onFrame(listener: (frame: Frame) => void): void {
    this.frameListeners.push(listener);
  }

  onClose(listener: (error?: Error) => void): void {
    if (this.closeReason) {
      listener(this.closeReason.error);
      return;
    }
    this.closeListeners.push(listener);
  }

  close(): void {
    if (this.closed) return;
    this.endSocket();
    this.finish(undefined);
  }

  /** Closes at once, dropping unsent frames (a server shutting down past its grace). Idempotent. */
  destroy(error?: Error): void {
    this.socket.destroy();
    this.finish(error);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    // A throwing listener is the caller's bug, not the peer's: it propagates unchanged (the frames
    // after it stay buffered for the next chunk) and is never answered as a PROTOCOL error.
    let listenerFailure: { error: unknown } | undefined;
    try {
      this.decoder.decode(chunk, (frame) => {
        try {
          for (const listener of this.frameListeners) listener(frame);
        } catch (error) {
          listenerFailure = { error };
          return false;
        }
        // A listener may close the channel: later frames of this chunk are then dropped.
        return !this.closed;
      });
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.rejectPeer(error);
    }
    if (listenerFailure) throw listenerFailure.error;
  }

  private onEnd(): void {
    if (this.closed) return;
    try {
      this.decoder.end();
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.rejectPeer(error);
      return;
    }
    this.close();
  }

  /** Tells the peer what it got wrong, then closes with that error. */
  private rejectPeer(error: FrameError): void {
    if (this.closed) return;
    this.socket.write(
      encodeFrame(
        { type: 'error', code: 'PROTOCOL', reason: error.reason, message: error.message },
        this.maxFrameBytes,
      ),
    );
    this.endSocket();
    this.finish(error);
  }

  /** Ends the socket gracefully (flushing), and destroys it if that takes longer than the grace. */
  private endSocket(): void {
    this.socket.end();
    this.destroyTimer = setTimeout(() => this.socket.destroy(), this.closeGraceMs);
    this.destroyTimer.unref();
  }

  private finish(error: Error | undefined): void {
    if (this.closeReason) return;
    this.closeReason = error === undefined ? {} : { error };
    const listeners = this.closeListeners.splice(0);
    for (const listener of listeners) listener(error);
  }
}
