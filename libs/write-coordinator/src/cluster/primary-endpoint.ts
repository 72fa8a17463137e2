import type { WriteChange } from '../changes/write-change';
import type { ClusterLog } from './cluster-log';
import { InvalidParamsError } from '../errors';
import {
  errorFrame,
  ForwardedCall,
  handlersMismatch,
  helloProblem,
  isId,
  PROTOCOL_VERSION,
  RequestFrame,
  requestProblem,
  secretsMatch,
  toWireError,
  WelcomeFrame,
} from './protocol';
import type { Frame, FrameChannel } from './transport';

/** What the primary's endpoint needs from its coordinator. */
export interface EndpointHost {
  readonly log: ClusterLog;
  /** Names a secondary must also have (handlers and forwardable methods), sorted. */
  handlerNames(): string[];
  /** Runs a forwarded call once per request id (see `Coordinator`'s exactly-once path). */
  execute(
    call: ForwardedCall,
    requestId: string,
    options: { timeoutMs: number; signal: AbortSignal; label?: string; meta?: RequestFrame['meta'] },
  ): Promise<unknown>;
}

/** What {@link PrimaryEndpoint} adds to a frame when it has no replication position (one host). */
const NO_TXID: { txid?: number } = Object.freeze({});

/** One connected secondary. */
interface Peer {
  readonly channel: FrameChannel;
  /** It re-emits changes (said in its hello): only then are they streamed to it. */
  readonly wantsChanges: boolean;
  /** Requests of this peer still running, by their channel id, to cancel them. */
  readonly running: Map<number, AbortController>;
}

/**
 * @internal The primary's side of the cluster protocol: checks each new channel's handshake
 * (protocol version, secret, handler names), runs the forwarded requests it receives through the
 * coordinator and answers each on its channel, answers pings, and streams every committed change
 * to every connected secondary with a sequence number. A misbehaving channel (malformed frames,
 * no handshake in time, a wrong secret) gets an `error` frame and is closed; the others never
 * notice.
 */
export class PrimaryEndpoint {
  /** This primary's lifetime: sequence numbers restart with every primary. */
  readonly epoch = `${process.pid}-${Date.now().toString(36)}`;
  private seq = 0;
  private readonly peers = new Set<Peer>();
  /** Forwarded requests received, and how many are running now. */
  private received = 0;
  private running = 0;

  constructor(
    private readonly host: EndpointHost,
    private readonly settings: {
      secret: string | undefined;
      handshakeTimeoutMs: number;
      /** A secondary with more unread bytes than this is disconnected (it reconnects and counts what it missed). */
      maxBacklogBytes: number;
      /**
       * This host's replication position (LiteFS TXID), sent with every answer, welcome and pong so
       * that a replica can wait for the write it forwarded and report its lag. Absent: none sent.
       */
      position?: () => number | undefined;
    },
  ) {}

  /** Secondaries connected now (past their handshake). */
  get peerCount(): number {
    return this.peers.size;
  }

  /** Counters for `metrics().cluster`. */
  counts(): { received: number; running: number } {
    return { received: this.received, running: this.running };
  }

  /** Whether any secondary would receive a change published now. */
  get wantsChanges(): boolean {
    for (const peer of this.peers) if (peer.wantsChanges) return true;
    return false;
  }

  /** Takes a new channel: closes it unless a valid `hello` arrives within the handshake timeout. */
  accept(channel: FrameChannel): void {
    let peer: Peer | undefined;
    const timer = setTimeout(
      () => this.refuse(channel, 'HANDSHAKE_TIMEOUT', `no hello within ${this.settings.handshakeTimeoutMs} ms`),
      this.settings.handshakeTimeoutMs,
    );
    timer.unref?.();
    channel.onClose(() => {
      clearTimeout(timer);
      if (peer) this.peers.delete(peer);
    });
    channel.onFrame((frame) => {
      if (peer) return this.receive(peer, frame);
      clearTimeout(timer);
      peer = this.handshake(channel, frame);
      if (peer) this.peers.add(peer);
    });
  }

  /** Streams a committed change to every secondary, in commit order. */
  publish(change: WriteChange): void {
    const seq = ++this.seq;
    for (const peer of this.peers) {
      if (!peer.wantsChanges) continue;
      if (peer.channel.bufferedBytes > this.settings.maxBacklogBytes) {
        // It stopped reading: its frames would pile up here without bound. It reconnects and
        // reports the changes it missed (ChangesMissed); the others never wait for it.
        this.refuse(
          peer.channel,
          'SLOW_CONSUMER',
          `${peer.channel.bufferedBytes} bytes unread (more than ${this.settings.maxBacklogBytes})`,
        );
        continue;
      }
      try {
        peer.channel.send({ type: 'change', seq, change });
      } catch (error) {
        // Larger than a frame: the secondary learns the number was skipped and reports it missed.
        peer.channel.send({ type: 'change', seq, dropped: error instanceof Error ? error.message : String(error) });
      }
    }
  }

  /**
   * Tells every secondary this primary steps down after the last change it sent, then closes their
   * channels gracefully (answers and goodbye flushed). Resolves once they closed, or after `boundMs`.
   */
  goodbye(boundMs: number): Promise<void> {
    const closed = [...this.peers].map((peer) => {
      peer.channel.send({ type: 'goodbye', seq: this.seq });
      peer.channel.close();
      return peer.channel.whenReleased();
    });
    this.peers.clear();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, boundMs);
      void Promise.all(closed).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private handshake(channel: FrameChannel, frame: Frame): Peer | undefined {
    const problem = helloProblem(frame);
    if (problem) return void this.refuse(channel, 'PROTOCOL', problem);
    if (frame.protocol !== PROTOCOL_VERSION) {
      return void this.refuse(
        channel,
        'PROTOCOL_VERSION',
        `protocol version ${String(frame.protocol)} is not supported (this primary speaks ${PROTOCOL_VERSION})`,
      );
    }
    if (!secretsMatch(this.settings.secret, frame.secret)) {
      return void this.refuse(channel, 'UNAUTHORIZED', 'wrong or missing cluster secret');
    }
    const mismatch = handlersMismatch(this.host.handlerNames(), frame.handlers as string[]);
    if (mismatch) return void this.refuse(channel, 'HANDLERS_MISMATCH', mismatch);
    const welcome: WelcomeFrame = {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      epoch: this.epoch,
      seq: this.seq,
      ...this.txid(),
    };
    channel.send(welcome);
    return { channel, wantsChanges: frame.changes !== false, running: new Map() };
  }

  private receive(peer: Peer, frame: Frame): void {
    switch (frame.type) {
      case 'request':
        return this.request(peer, frame);
      case 'cancel':
        if (typeof frame.id === 'number') peer.running.get(frame.id)?.abort();
        return;
      case 'ping':
        peer.channel.send({ type: 'pong', t: frame.t, ...this.txid() });
        return;
      default:
        this.refuse(peer.channel, 'PROTOCOL', `unexpected frame type '${frame.type.slice(0, 64)}'`);
    }
  }

  private request(peer: Peer, frame: Frame): void {
    const problem = requestProblem(frame);
    if (problem) {
      if (!isId(frame.id)) return this.refuse(peer.channel, 'PROTOCOL', problem);
      peer.channel.send({
        type: 'response',
        id: frame.id,
        ok: false,
        error: toWireError(new InvalidParamsError(problem)),
      });
      return;
    }
    const request = frame as RequestFrame;
    if (peer.running.has(request.id)) {
      return this.refuse(peer.channel, 'PROTOCOL', `request id ${request.id} is already running on this channel`);
    }
    const controller = new AbortController();
    peer.running.set(request.id, controller);
    this.received++;
    this.running++;
    void this.host
      .execute(request.call, request.requestId, {
        timeoutMs: request.timeoutMs,
        signal: controller.signal,
        label: request.label,
        meta: request.meta,
      })
      .then(
        (result) => ({
          type: 'response',
          id: request.id,
          ok: true,
          ...(result === undefined ? {} : { result }),
          ...this.txid(),
        }),
        (error: unknown) => ({ type: 'response', id: request.id, ok: false, error: toWireError(error) }),
      )
      .then((response) => {
        this.running--;
        peer.running.delete(request.id);
        try {
          peer.channel.send(response);
        } catch (error) {
          this.host.log.error(`could not answer forwarded request ${request.requestId}`, error);
          peer.channel.send({ type: 'response', id: request.id, ok: false, error: toWireError(error) });
        }
      });
  }

  /** `{ txid }` with this host's position after what it just did; one shared empty object without one (one host). */
  private txid(): { txid?: number } {
    const txid = this.settings.position?.();
    return txid === undefined ? NO_TXID : { txid };
  }

  private refuse(channel: FrameChannel, code: Parameters<typeof errorFrame>[0], message: string): void {
    if (channel.closed) return;
    this.host.log.warn(`cluster: closing ${channel.peer}: ${code}: ${message}`);
    channel.send(errorFrame(code, message));
    channel.close();
  }
}
