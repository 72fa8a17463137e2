/**
 * Primary resolution on LiteFS: LiteFS holds the primary lease, this node only follows what its
 * LiteFS says. The event stream says it exactly (`init`, then `primaryChange`); while the stream is
 * unreachable, the mount's `.primary` file is polled instead. That file exists only on a replica
 * connected to the primary, so its presence is trusted (a replica of the hostname it holds), but its
 * absence means "primary" *or* "cut off": it is read as primary only when the last event heard said
 * so, and otherwise as unknown, so that a cut-off replica never starts writing.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClusterLog } from './cluster-log';
import { LiteFsEvent, LiteFsEvents } from './litefs-events';
import { PrimaryElection, PrimaryView } from './primary-election';

/** Construction options of {@link LiteFsElection}. */
export interface LiteFsElectionOptions {
  /** The LiteFS mount directory, where `.primary` is. */
  readonly mountDir: string;
  /** The node's event stream (shared with the positions), or undefined to poll `.primary` only. */
  readonly events: LiteFsEvents | undefined;
  /** How often `.primary` is read while the event stream is down. */
  readonly pollMs: number;
  /** Where unreadable `.primary` files are reported. */
  readonly log: ClusterLog;
}

/** What one read of `.primary` found. */
type PrimaryFile =
  | { readonly kind: 'present'; readonly hostname: string }
  | { readonly kind: 'absent' }
  | { readonly kind: 'unreadable'; readonly reason: string };

/**
 * The `litefs` strategy of {@link PrimaryElection}: primary exactly when LiteFS says this node is.
 *
 * @example
 * const election = new LiteFsElection({ mountDir: '/litefs', events, pollMs: 1000, log });
 * await election.start(() => roleMachine.reconsider(), 2000);
 * election.view(); // { kind: 'replica', primary: 'node-a' }
 */
export class LiteFsElection implements PrimaryElection {
  /** @inheritdoc */
  readonly strategy = 'litefs' as const;
  /** @inheritdoc */
  readonly writesNeedPrimary = true;
  private readonly primaryFile: string;
  private readonly events: LiteFsEvents | undefined;
  private readonly pollMs: number;
  private readonly log: ClusterLog;
  /** The view of the last `init` / `primaryChange` of the open stream (undefined once it drops). */
  private heardView: PrimaryView | undefined;
  /** The view of the last `init` / `primaryChange` ever heard: kept until `.primary` is read. */
  private lastEventView: PrimaryView | undefined;
  /** Whether the last `init` / `primaryChange` heard said this node is the primary. */
  private lastEventSaidPrimary = false;
  /**
   * The last read of `.primary` since the stream went down (or since start): undefined until one
   * completes. Only read while the stream is down.
   */
  private fileState: PrimaryFile | undefined;
  /** Bumped whenever the stream goes down: a read started before then is stale. */
  private generation = 0;
  private streamUp = false;
  private current: PrimaryView = { kind: 'unknown', reason: 'starting: LiteFS has not been heard yet' };
  private onChange: () => void = () => undefined;
  /** Resolves the promise of {@link start} (and clears its settle timer); undefined once done. */
  private finishStart: (() => void) | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private unsubscribe: (() => void) | undefined;
  private started = false;
  private stopped = false;
  private warnedUnreadable = false;

  constructor(options: LiteFsElectionOptions) {
    this.primaryFile = join(options.mountDir, '.primary');
    this.events = options.events;
    this.pollMs = options.pollMs;
    this.log = options.log;
  }

  /**
   * Subscribes to the event stream and reads `.primary` once. Resolves at the first view that is not
   * `unknown`, or after `settleMs` (the view then stays `unknown` until LiteFS is heard).
   * Calling it again (or after {@link stop}) does nothing.
   */
  start(onChange: () => void, settleMs: number): Promise<void> {
    if (this.started || this.stopped) return Promise.resolve();
    this.started = true;
    return new Promise<void>((resolve) => {
      const settle = setTimeout(() => this.finishStart?.(), settleMs);
      this.finishStart = () => {
        clearTimeout(settle);
        this.finishStart = undefined;
        resolve();
      };
      this.onChange = onChange;
      this.streamUp = this.events?.connected ?? false;
      this.unsubscribe = this.events?.subscribe({
        event: (event) => this.onEvent(event),
        connection: (connected) => this.onConnection(connected),
      });
      this.poll();
    });
  }

  /** @inheritdoc */
  view(): PrimaryView {
    return this.current;
  }

  /** True exactly when {@link view} says `primary` (LiteFS holds the lease; nothing to take). */
  claim(): boolean {
    return this.current.kind === 'primary';
  }

  /** Nothing to give up: LiteFS holds the lease. */
  release(): void {}

  /**
   * Reads `.primary` again now when the view rests on it (the stream is down): the database file
   * just refused a write, so the lease may have moved while the stream could not say so.
   */
  recheck(): void {
    if (!this.streamUp || this.heardView === undefined) this.poll();
  }

  /** Unsubscribes from the stream and stops polling. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.finishStart?.();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  private onEvent(event: LiteFsEvent): void {
    if (event.type === 'tx') return;
    this.lastEventSaidPrimary = event.isPrimary;
    if (event.isPrimary) this.heardView = { kind: 'primary' };
    else if (event.hostname !== '') this.heardView = { kind: 'replica', primary: event.hostname };
    else this.heardView = { kind: 'unknown', reason: 'LiteFS knows no primary (cut off from the cluster?)' };
    this.lastEventView = this.heardView;
    if (this.streamUp) {
      clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
    this.update();
  }

  private onConnection(connected: boolean): void {
    this.streamUp = connected;
    if (connected) return;
    this.generation++;
    this.heardView = undefined;
    this.fileState = undefined;
    this.update();
    this.poll();
  }

  /**
   * Reads `.primary` now, then every `pollMs` while the stream is down or has said nothing yet
   * (connected, but no `init` heard). One read at a time.
   */
  private poll(): void {
    if (this.stopped || this.polling) return;
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.polling = true;
    const generation = this.generation;
    void readPrimaryFile(this.primaryFile).then((state) => {
      this.polling = false;
      if (this.stopped) return;
      if (generation === this.generation) {
        if (state.kind === 'unreadable' && !this.warnedUnreadable) {
          this.warnedUnreadable = true;
          this.log.warn(`LiteFS: cannot read ${this.primaryFile} (${state.reason}); the primary is unknown meanwhile`);
        }
        this.fileState = state;
        this.update();
      }
      if (!this.streamUp || this.heardView === undefined) {
        this.pollTimer = setTimeout(() => this.poll(), this.pollMs);
      }
    });
  }

  /** Recomputes the view; tells the owner when it changed (a throwing `onChange` is logged, not thrown). */
  private update(): void {
    const next = this.computeView();
    if (sameView(next, this.current)) return;
    this.current = next;
    if (next.kind !== 'unknown') this.finishStart?.();
    try {
      this.onChange();
    } catch (error) {
      this.log.error('LiteFS election: the onChange callback threw', error);
    }
  }

  private computeView(): PrimaryView {
    if (this.streamUp && this.heardView !== undefined) return this.heardView;
    const file = this.fileState;
    if (file === undefined) {
      return this.lastEventView ?? { kind: 'unknown', reason: 'starting: reading .primary' };
    }
    switch (file.kind) {
      case 'present':
        return { kind: 'replica', primary: file.hostname };
      case 'unreadable':
        return { kind: 'unknown', reason: `cannot read .primary (${file.reason})` };
      case 'absent':
        if (this.lastEventSaidPrimary) return { kind: 'primary' };
        return {
          kind: 'unknown',
          reason:
            this.events === undefined
              ? 'no .primary and no event stream configured (eventsUrl: false): primary or cut off?'
              : "no .primary and LiteFS's event stream is unreachable: primary or cut off?",
        };
    }
  }
}

async function readPrimaryFile(path: string): Promise<PrimaryFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'unreadable', reason: error instanceof Error ? error.message : String(error) };
  }
  const hostname = text.trim();
  return hostname === '' ? { kind: 'unreadable', reason: 'the file is empty' } : { kind: 'present', hostname };
}

function sameView(a: PrimaryView, b: PrimaryView): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'replica' && b.kind === 'replica') return a.primary === b.primary;
  if (a.kind === 'unknown' && b.kind === 'unknown') return a.reason === b.reason;
  return true;
}
