/**
 * The cluster's transport seam: how a secondary reaches the primary and how frames travel. The
 * protocol (handshake, requests, responses, heartbeats, changes) is written against these
 * interfaces only: {@link UnixSocketTransport} carries it between the processes of one host (a Unix
 * domain socket), {@link HttpTransport} between hosts (an HTTP/1.1 connection upgraded to
 * `write-coordinator/1`, with a bearer secret and optional TLS).
 */

/** One message of the cluster protocol: a JSON object whose `type` names it. */
export interface Frame {
  type: string;
  [field: string]: unknown;
}

/**
 * A bidirectional, ordered, reliable stream of frames between a secondary and the primary. A
 * channel closes once; every listener of {@link onClose} is told once, with the reason when it was
 * not a plain close (a malformed, truncated or oversized frame from the peer, an I/O error).
 */
export interface FrameChannel {
  /** Who is at the other end, for logs and errors (e.g. `unix:/tmp/app.db.sock#3`). */
  readonly peer: string;
  /** True once closed (by either side); later {@link send} calls return false. */
  readonly closed: boolean;
  /** Bytes sent but not yet handed to the peer's transport (a peer that stops reading makes it grow). */
  readonly bufferedBytes: number;
  /**
   * Queues one frame for the peer. Returns false (sends nothing) when the channel is closed.
   * @throws {FrameError} (`oversized`) when the frame is larger than the transport's maximum; the
   *   channel stays open.
   */
  send(frame: Frame): boolean;
  /** Called for every frame received, in order. */
  onFrame(listener: (frame: Frame) => void): void;
  /** Called once when the channel closes; `error` says why when it was not a plain close. */
  onClose(listener: (error?: Error) => void): void;
  /** Closes the channel (pending outgoing frames are flushed first when possible). Idempotent. */
  close(): void;
  /**
   * Resolves once the underlying connection is gone: after a {@link close}, when the frames sent
   * before it were flushed (or the transport gave up on them); after the peer closed, at once.
   */
  whenReleased(): Promise<void>;
}

/** The primary's listening endpoint. */
export interface FrameServer {
  /** Where secondaries connect (e.g. the socket path). */
  readonly address: string;
  /** Stops accepting, closes every channel, removes the endpoint (the socket file). Idempotent. */
  close(): Promise<void>;
}

/** How a cluster node listens (as the primary) and connects (as a secondary). */
export interface ClusterTransport {
  /** Where the primary listens, for logs and metrics. */
  readonly address: string;
  /**
   * Starts listening. Only the holder of the primary lock calls it: it may remove a stale endpoint
   * left by a dead primary (a socket file nobody listens on).
   */
  listen(onChannel: (channel: FrameChannel) => void): Promise<FrameServer>;
  /**
   * Connects to the primary. Rejects when nobody listens (no socket file, connection refused) or
   * within `timeoutMs`.
   */
  connect(timeoutMs: number): Promise<FrameChannel>;
}
