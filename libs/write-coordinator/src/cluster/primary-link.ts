import type { WriteChange } from '../changes/write-change';
import type { ClusterLog } from './cluster-log';
import {
  CancelledError,
  ReplicationTimeoutError,
  TimeoutError,
  UnavailableError,
  WriteCoordinatorError,
} from '../errors';
import type { ReplicationPosition } from './primary-election';

import { ForwardedCall, fromWireError, PROTOCOL_VERSION, RequestFrame, WelcomeFrame } from './protocol';
import type { ClusterTransport, Frame, FrameChannel } from './transport';

/** Codes with which a primary going away refuses a request it certainly did not run: resend elsewhere. */
const STEPPING_DOWN = new Set(['DRAINING', 'SHUTDOWN', 'COORDINATOR_NOT_READY', 'NOT_PRIMARY']);

/**
 * Connection failures that only mean "no primary to talk to right now" (none known, nobody
 * listening yet, a primary going away): retried quietly. Anything else is worth a human's look.
 */
const ROUTINE_CONNECT_FAILURES = new Set([
  'ENOPRIMARY',
  'ENOENT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** What the link reports to its cluster node. */
export interface LinkEvents {
  /** The channel to the primary closed (or the primary refused the handshake). */
  lost(reason: string): void;
  /** The primary answered nothing for three heartbeats. */
  unresponsive(pid: number | undefined): void;
  /** Changes were published that this process will never receive. */
  missed(count: number, exact: boolean): void;
  /** A change from the primary, in commit order. */
  change(change: WriteChange): void;
  /** The primary reported its replication position (LiteFS TXID): in pongs, welcomes and answers. */
  primaryPosition?(txid: number): void;
  /** The link now talks to another primary than before (a new epoch): its positions start over. */
  newPrimary?(): void;
}

/** A forwarded write waiting for its outcome. */
interface Pending {
  readonly id: number;
  readonly requestId: string;
  readonly call: ForwardedCall;
  readonly label: string | undefined;
  readonly meta: RequestFrame['meta'];
  /** `performance.now()` at which the caller's deadline passes. */
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  /** The channel it is on now, waiting for its answer (undefined: waiting for a primary). */
  channel: FrameChannel | undefined;
  /** Ever sent (for the counters). */
  sent: boolean;
  /** A primary may have applied it: it was on a channel that closed before answering. */
  uncertain: boolean;
  /** The caller aborted it while a primary had it: waiting for that primary's word. */
  aborted: boolean;
  /** Answered by the primary; waiting for this replica to reach the primary's position. */
  answered: boolean;
  settle(outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): void;
  /** Stops this link's deadline and abort handling: whoever takes the request over enforces them. */
  handOver(): void;
}

/** A request a closing link gives back, for its new owner to run and settle. */
export interface HandedOver {
  readonly call: ForwardedCall;
  readonly requestId: string;
  readonly label: string | undefined;
  readonly meta: RequestFrame['meta'];
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  /** A primary may already have applied it (so only a run with the same request id is safe). */
  readonly maybeApplied: boolean;
  settle(outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): void;
}

/**
 * @internal A secondary's connection to the primary: handshake, forwarded requests (each sent
 * again with the same request id on the next channel when one closes before answering, until the
 * caller's deadline), heartbeats, and the stream of changes.
 */
export class PrimaryLink {
  private channel: FrameChannel | undefined;
  /** The primary refused new work on this channel (it is draining): wait for the next one. */
  private steppingDown = false;
  private readonly pending = new Map<number, Pending>();
  private idleWaiters: Array<() => void> = [];
  private nextId = 1;
  private lastFrameAt = 0;
  /** When the link last lost its primary (or was created). */
  private lostAt = performance.now();
  private reportedUnresponsive = false;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The primary's lifetime and the last change received from it. */
  private epoch: string | undefined;
  private seq = 0;
  /** The previous primary said goodbye after its last change: nothing of it was missed. */
  private cleanGoodbye = false;
  private closed = false;
  /** Process id of the primary this link is connected to. */
  primaryPid: number | undefined;
  /** Forwarded requests sent (first sends), sent again after a channel closed, and changes missed in all. */
  forwarded = 0;
  resent = 0;
  changesMissed = 0;
  /** The last handshake refusal, quoted in `UNAVAILABLE` errors. */
  private refusal: string | undefined;
  /** The highest replication position (TXID) the primary reported, when it reports one. */
  primaryPosition: number | undefined;

  constructor(
    private readonly transport: ClusterTransport,
    private readonly settings: {
      secret: string | undefined;
      heartbeatMs: number;
      handshakeTimeoutMs: number;
      handlerNames: () => string[];
      /** Whether this process re-emits the primary's changes (asked at each handshake). */
      wantsChanges: () => boolean;
      /**
       * LiteFS: after a forwarded write committed, wait (at most `timeoutMs`) until this replica's
       * `position` reaches the TXID the primary answered with, then answer the caller.
       */
      readYourWrites?: { position: ReplicationPosition; timeoutMs: number };
    },
    private readonly events: LinkEvents,
    private readonly log: ClusterLog,
  ) {}

  /** True while a channel to a primary is open and past its handshake. */
  get connected(): boolean {
    return this.channel !== undefined && !this.channel.closed;
  }

  /** False once the primary answered nothing for three heartbeats (until it answers again). */
  get responsive(): boolean {
    return !this.reportedUnresponsive;
  }

  /** Ms since this link last had a primary (0 while connected). */
  get withoutPrimaryMs(): number {
    return this.connected ? 0 : performance.now() - this.lostAt;
  }

  /** Forwarded requests not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Resolves once no forwarded request waits for an answer (at once if none does). */
  idle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * One attempt to connect and pass the handshake; resolves true when connected. On success every
   * request waiting for a primary is sent (again, with its request id) in the order it was made.
   */
  async connect(): Promise<boolean> {
    if (this.closed || this.connected) return this.connected;
    let channel: FrameChannel;
    try {
      channel = await this.transport.connect(this.settings.handshakeTimeoutMs);
    } catch (error) {
      this.noteConnectFailure(error);
      return false;
    }
    if (this.closed) {
      channel.close();
      return false;
    }
    return (await this.handshake(channel)) && this.connected;
  }

  /**
   * A connection attempt failed. Nobody listening (no primary yet, one starting or gone) is routine
   * and retried quietly; a refusal that retrying cannot fix by itself (a wrong secret: `401`, an
   * unusable URL, a certificate refused) is quoted in the callers' `UNAVAILABLE` errors and logged
   * once per distinct reason.
   */
  private noteConnectFailure(error: unknown): void {
    const code = (error as { code?: unknown } | undefined)?.code;
    if (typeof code === 'string' && ROUTINE_CONNECT_FAILURES.has(code)) return;
    const reason = error instanceof Error ? error.message : String(error);
    const quoted = `the primary could not be reached: ${reason}`;
    if (quoted !== this.refusal) this.log.error(`cluster: ${quoted}`);
    this.refusal = quoted;
  }

  /**
   * Sends a write to the primary and resolves with its outcome. Waits for a primary while there is
   * none, resends on the next one when a channel closes first, until `deadline`: then `UNAVAILABLE`
   * if it was never sent (certainly not written), `TIMEOUT` if it was (maybe written; retrying with
   * the same request id is safe).
   */
  forward(
    call: ForwardedCall,
    requestId: string,
    options: { deadline: number; signal?: AbortSignal; label?: string; meta?: RequestFrame['meta'] },
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const context = { label: options.label };
      const onAbort = () => {
        if (entry.channel) {
          // A primary has it: ask it to cancel, and wait for its word (CANCELLED or the result).
          entry.aborted = true;
          entry.channel.send({ type: 'cancel', id });
          return;
        }
        entry.settle({ ok: false, error: cancelled(entry.uncertain, context) });
      };
      const timer = setTimeout(
        () => {
          if (!entry.channel && !entry.uncertain) {
            const why = this.refusal ?? 'no primary accepted it before its deadline';
            return entry.settle({ ok: false, error: new UnavailableError(why, context) });
          }
          const error = new TimeoutError(
            `no answer from the primary before the deadline; it may have been written (request id ${requestId}: ` +
              `sending it again with the same meta.requestId is safe)`,
            context,
          );
          entry.settle({ ok: false, error: maybeWritten(error) });
        },
        Math.max(0, options.deadline - performance.now()),
      );
      const handOver = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const entry: Pending = {
        id,
        requestId,
        call,
        label: options.label,
        meta: options.meta,
        deadline: options.deadline,
        signal: options.signal,
        channel: undefined,
        sent: false,
        uncertain: false,
        aborted: false,
        answered: false,
        handOver,
        settle: (outcome) => {
          if (!this.pending.delete(id)) return;
          handOver();
          if (this.pending.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
          if (outcome.ok) resolve(outcome.value);
          else reject(outcome.error);
        },
      };
      this.pending.set(id, entry);
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.send(entry);
    });
  }

  /**
   * Closes the link for good. The requests still waiting are handed over (their deadline and abort
   * no longer watched here): the caller runs them elsewhere — a promoted node runs them itself, with
   * the same request ids — or answers them, and settles each.
   */
  close(): HandedOver[] {
    this.closed = true;
    clearInterval(this.heartbeat);
    const channel = this.channel;
    this.channel = undefined;
    channel?.close();
    // (answered ones are only waiting for replication: they settle themselves)
    return [...this.pending.values()]
      .filter((entry) => !entry.answered)
      .map((entry) => {
        entry.handOver();
        return {
          call: entry.call,
          requestId: entry.requestId,
          label: entry.label,
          meta: entry.meta,
          deadline: entry.deadline,
          signal: entry.signal,
          maybeApplied: entry.uncertain || entry.channel !== undefined,
          settle: entry.settle,
        };
      });
  }

  /**
   * Closes the channel to the primary now (the election says another host is the primary): its
   * unanswered requests are sent again, with their request ids, on the next channel.
   */
  dropChannel(reason: string): void {
    if (!this.channel) return;
    this.log.warn(`cluster: leaving ${this.channel.peer}: ${reason}`);
    this.channel.close();
  }

  private send(entry: Pending): void {
    const channel = this.channel;
    if (!channel || channel.closed || this.steppingDown) return;
    const frame: RequestFrame = {
      type: 'request',
      id: entry.id,
      requestId: entry.requestId,
      call: entry.call,
      timeoutMs: Math.max(1, Math.round(entry.deadline - performance.now())),
      ...(entry.label === undefined ? {} : { label: entry.label }),
      ...(entry.meta === undefined ? {} : { meta: entry.meta }),
    };
    try {
      if (!channel.send(frame)) return;
    } catch (error) {
      return entry.settle({ ok: false, error });
    }
    if (entry.sent) this.resent++;
    else this.forwarded++;
    entry.sent = true;
    entry.channel = channel;
  }

  /**
   * Sends `hello` and waits for the answer. A `welcome` adopts the channel at once, inside the
   * frame callback, so frames the primary sent right behind it (changes, in the same chunk) reach
   * {@link receive} in order. Resolves true once adopted; false for a refusal, a close or silence.
   */
  private handshake(channel: FrameChannel): Promise<boolean> {
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(
        () => refused('no welcome within the handshake timeout'),
        this.settings.handshakeTimeoutMs,
      );
      const refused = (refusal: string | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (refusal) {
          const quoted = `the primary refused the handshake: ${refusal}`;
          if (quoted !== this.refusal) this.log.error(`cluster: the primary refused this process: ${refusal}`);
          this.refusal = quoted;
        }
        channel.close();
        resolve(false);
      };
      channel.onClose((error) => refused(error ? error.message : undefined));
      channel.onFrame((frame) => {
        if (this.channel === channel) return this.receive(frame);
        if (settled) return;
        if (frame.type === 'welcome' && typeof frame.epoch === 'string' && Number.isSafeInteger(frame.seq)) {
          if (this.closed) return refused(undefined);
          settled = true;
          clearTimeout(timer);
          this.adopt(channel, frame as WelcomeFrame);
          return resolve(true);
        }
        refused(
          frame.type === 'error' ? `${String(frame.code)}: ${String(frame.message)}` : `unexpected '${frame.type}'`,
        );
      });
      channel.send({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        pid: process.pid,
        handlers: this.settings.handlerNames(),
        changes: this.settings.wantsChanges(),
        ...(this.settings.secret === undefined ? {} : { secret: this.settings.secret }),
      });
    });
  }

  private adopt(channel: FrameChannel, welcome: WelcomeFrame): void {
    this.channel = channel;
    this.steppingDown = false;
    this.refusal = undefined;
    this.primaryPid = typeof welcome.pid === 'number' ? welcome.pid : undefined;
    if (welcome.epoch !== this.epoch) {
      // Another primary: its positions start over from its own history (after an unclean
      // failover they can be lower than the last one the previous primary reported).
      this.primaryPosition = undefined;
      this.events.newPrimary?.();
    }
    this.notePosition(welcome.txid);
    this.noteMissed(welcome);
    this.lastFrameAt = performance.now();
    this.reportedUnresponsive = false;
    channel.onClose((error) => {
      if (this.channel !== channel) return;
      this.channel = undefined;
      this.lostAt = performance.now();
      clearInterval(this.heartbeat);
      for (const entry of [...this.pending.values()]) {
        if (entry.channel !== channel) continue;
        // Unanswered: that primary may have applied it. Sent again (same id) to the next one,
        // unless its caller already gave up on it.
        entry.channel = undefined;
        entry.uncertain = true;
        if (entry.aborted) entry.settle({ ok: false, error: cancelled(true, { label: entry.label }) });
      }
      this.events.lost(error ? error.message : 'the connection closed');
    });
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.beat(channel), this.settings.heartbeatMs);
    this.heartbeat.unref?.();
    for (const entry of this.pending.values()) this.send(entry);
  }

  /**
   * This process takes over from its primary (promotion): whatever that primary committed after its
   * last change reached us is lost to us, unless it said goodbye. Reported, never silent.
   */
  noteAbandoned(): void {
    if (this.epoch !== undefined && !this.cleanGoodbye && this.settings.wantsChanges()) this.reportMissed(0, false);
  }

  /** Counts what a reconnection missed: the same primary's gap, or a new primary's changes so far. */
  private noteMissed(welcome: WelcomeFrame): void {
    if (!this.settings.wantsChanges()) {
      // Nothing is streamed to a process without a publisher: nothing to miss.
      this.epoch = welcome.epoch;
      return;
    }
    const first = this.epoch === undefined;
    if (welcome.epoch === this.epoch) {
      this.reportMissed(welcome.seq - this.seq, true);
    } else if (!first) {
      // A new primary: its own changes so far, plus whatever the old one committed after its last
      // change reached us, unknown unless it said goodbye.
      this.reportMissed(welcome.seq, this.cleanGoodbye);
    }
    this.epoch = welcome.epoch;
    this.seq = welcome.seq;
    this.cleanGoodbye = false;
  }

  private reportMissed(count: number, exact: boolean): void {
    if (count <= 0 && exact) return;
    this.changesMissed += Math.max(0, count);
    this.events.missed(Math.max(0, count), exact);
  }

  private receive(frame: Frame): void {
    this.lastFrameAt = performance.now();
    if (this.reportedUnresponsive) this.reportedUnresponsive = false;
    switch (frame.type) {
      case 'response':
        return this.answer(frame);
      case 'change': {
        const seq = frame.seq as number;
        if (!Number.isSafeInteger(seq)) return;
        if (seq > this.seq + 1) this.reportMissed(seq - this.seq - 1, true);
        if (seq <= this.seq) return;
        this.seq = seq;
        if (frame.change === undefined) return this.reportMissed(1, true);
        this.events.change(frame.change as WriteChange);
        return;
      }
      case 'goodbye':
        // The primary steps down after its last change and answer: leave at once (a primary that
        // kept the channel open after it would otherwise hold this process back for ever).
        this.cleanGoodbye = frame.seq === this.seq;
        this.steppingDown = true;
        this.channel?.close();
        return;
      case 'pong':
        return this.notePosition(frame.txid);
      case 'error':
        this.log.error(`cluster: the primary closed the connection: ${String(frame.code)}: ${String(frame.message)}`);
        return;
      default:
        this.log.warn(`cluster: ignoring an unknown frame '${frame.type.slice(0, 64)}' from the primary`);
    }
  }

  private answer(frame: Frame): void {
    const entry = typeof frame.id === 'number' ? this.pending.get(frame.id) : undefined;
    if (!entry || entry.answered) return;
    this.notePosition(frame.txid);
    if (frame.ok === true) return this.settleAfterReplication(entry, frame.result, frame.txid);
    const code = (frame.error as { code?: unknown } | undefined)?.code;
    if (typeof code === 'string' && STEPPING_DOWN.has(code)) {
      // Certainly not run there; that primary is going away. Send it to the next one (or, if its
      // caller gave up meanwhile, answer it: not written, unless an earlier primary may have).
      this.steppingDown = true;
      entry.channel = undefined;
      if (entry.aborted) entry.settle({ ok: false, error: cancelled(entry.uncertain, { label: entry.label }) });
      return;
    }
    // Refused here, but an earlier primary that went away unanswering may have applied it.
    entry.settle({
      ok: false,
      error: unlessApplied(fromWireError(frame.error, { label: entry.label }), entry.uncertain),
    });
  }

  /** Remembers the highest position (TXID) the primary reported, and tells the node. */
  private notePosition(txid: unknown): void {
    if (typeof txid !== 'number' || !Number.isSafeInteger(txid) || txid < 0) return;
    if (this.primaryPosition !== undefined && txid <= this.primaryPosition) return;
    this.primaryPosition = txid;
    this.events.primaryPosition?.(txid);
  }

  /**
   * Read your writes: a write the primary committed at `txid` is answered once this replica's
   * position reaches it (at most `timeoutMs`: then `REPLICATION_TIMEOUT`, which carries the
   * result). Without a position to wait for, at once.
   */
  private settleAfterReplication(entry: Pending, value: unknown, txid: unknown): void {
    const wait = this.settings.readYourWrites;
    if (!wait || typeof txid !== 'number' || !Number.isSafeInteger(txid)) return entry.settle({ ok: true, value });
    const current = wait.position.current();
    if (current !== undefined && current >= txid) return entry.settle({ ok: true, value });
    // Done on the primary: no longer this link's to resend, time out or cancel.
    entry.answered = true;
    entry.channel = undefined;
    entry.handOver();
    void wait.position.waitFor(txid, wait.timeoutMs).then((reached) => {
      if (reached) return entry.settle({ ok: true, value });
      const context = { label: entry.label };
      entry.settle({
        ok: false,
        error: new ReplicationTimeoutError(txid, wait.position.current(), wait.timeoutMs, value, context),
      });
    });
  }

  private beat(channel: FrameChannel): void {
    if (this.channel !== channel) return;
    channel.send({ type: 'ping', t: Date.now() });
    if (!this.reportedUnresponsive && performance.now() - this.lastFrameAt > 3 * this.settings.heartbeatMs) {
      this.reportedUnresponsive = true;
      this.events.unresponsive(this.primaryPid);
    }
  }
}

/** The answer to an aborted request: certainly not written, or (`uncertain`) perhaps written. */
function cancelled(uncertain: boolean, context: { label?: string }): CancelledError {
  if (!uncertain) return new CancelledError('aborted before any primary ran it', context);
  return maybeWritten(
    new CancelledError(
      'aborted after it was sent; the primary that had it went away before saying whether it was written ' +
        '(sending it again with the same meta.requestId is safe)',
      context,
    ),
  );
}

/** Marks an error whose write may have taken effect: never retryable (unless with the same request id). */
function maybeWritten<E extends WriteCoordinatorError>(error: E): E {
  Object.defineProperty(error, 'retryable', { value: false, enumerable: true });
  return error;
}

/**
 * The error a caller gets for a request some primary may already have applied (`maybeApplied`): a
 * retryable refusal from wherever it went next cannot promise "not written", so it is not
 * retryable then (a retry with the same request id stays safe). Anything else is passed through.
 */
export function unlessApplied(error: unknown, maybeApplied: boolean): unknown {
  return maybeApplied && error instanceof WriteCoordinatorError && error.retryable ? maybeWritten(error) : error;
}
