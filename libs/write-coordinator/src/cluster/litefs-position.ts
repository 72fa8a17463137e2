/**
 * This node's LiteFS replication position for one database: the TXID in `<mountDir>/<db>-pos`
 * (`TXID/checksum`, 16 hex digits each). Read-your-writes waits on it: the primary reads it after a
 * commit, a replica waits until its own reaches that TXID. The file is read on demand (at most
 * every {@link LiteFsPositionOptions.cacheMs}), `tx` events of this database update it at once, and
 * while someone waits the file is also polled, since the event stream may be down. However many
 * callers wait, one timer serves them all.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ClusterLog } from './cluster-log';
import { LiteFsEvents, parseLiteFsTxid } from './litefs-events';
import { ReplicationPosition } from './primary-election';

/** A parsed `<db>-pos` file. */
export interface LiteFsPositionValue {
  /** The TXID of the last transaction applied. */
  readonly txid: number;
  /** LiteFS's checksum of the database after it, as 16 hex digits. */
  readonly checksum: string;
}

/**
 * Parses the content of a LiteFS `<db>-pos` file: `TXID/checksum`, 16 hex digits each, with an
 * optional trailing newline. Strict: anything else is undefined. A TXID above
 * `Number.MAX_SAFE_INTEGER` (2^53 − 1) is refused too (undefined): a JS number cannot hold it
 * exactly, and one transaction at a time no database gets there, so it means a corrupt file.
 *
 * @example parseLiteFsPosition('00000000002df417/ce552e44f23fbbdd\n') // { txid: 3011607, checksum: 'ce552e44f23fbbdd' }
 */
export function parseLiteFsPosition(text: string): LiteFsPositionValue | undefined {
  const match = /^([0-9a-fA-F]{16})\/([0-9a-fA-F]{16})\n?$/.exec(text);
  if (match === null) return undefined;
  const txid = parseLiteFsTxid(match[1]!);
  return txid === undefined ? undefined : { txid, checksum: match[2]!.toLowerCase() };
}

/** Construction options of {@link LiteFsPosition}. */
export interface LiteFsPositionOptions {
  /** The database file (its name gives `<name>-pos` and the `db` of its `tx` events). */
  readonly databasePath: string;
  /** The LiteFS mount directory, where `<name>-pos` is. @default the database file's directory */
  readonly mountDir?: string;
  /** The node's event stream (shared with the election), or undefined to read the file only. */
  readonly events?: LiteFsEvents;
  /** Where an unreadable or malformed position file is reported (once). */
  readonly log: ClusterLog;
  /** How often the file is read while someone waits. @default 5 */
  readonly pollMs?: number;
  /** How long a read of the file is reused by {@link LiteFsPosition.current}. @default 1 */
  readonly cacheMs?: number;
}

/** One caller of {@link LiteFsPosition.waitFor}. */
interface Waiter {
  readonly txid: number;
  readonly deadline: number;
  readonly settle: (reached: boolean) => void;
}

/**
 * The `ReplicationPosition` of one database on LiteFS.
 *
 * @example
 * const position = new LiteFsPosition({ databasePath: '/litefs/app.db', events, log });
 * const reached = await position.waitFor(primaryTxid, 5000); // false: REPLICATION_TIMEOUT
 */
export class LiteFsPosition implements ReplicationPosition {
  private readonly posFile: string;
  private readonly db: string;
  private readonly log: ClusterLog;
  private readonly pollMs: number;
  private readonly cacheMs: number;
  private txid: number | undefined;
  private advancedAt = performance.now();
  /** `performance.now()` of the last read of the file or `tx` event; -Infinity: never. */
  private readAt = -Infinity;
  /** Invariant: {@link timer} is set exactly when {@link waiters} is not empty (and not stopped). */
  private readonly waiters = new Set<Waiter>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private warned = false;

  constructor(options: LiteFsPositionOptions) {
    this.db = basename(options.databasePath);
    this.posFile = join(options.mountDir ?? dirname(options.databasePath), `${this.db}-pos`);
    this.log = options.log;
    this.pollMs = options.pollMs ?? 5;
    this.cacheMs = options.cacheMs ?? 1;
    this.unsubscribe = options.events?.subscribe({
      event: (event) => {
        if (event.type === 'tx' && event.db === this.db) {
          this.set(event.txid);
          this.wake();
        }
      },
    });
  }

  /** `performance.now()` of the last time the TXID was seen to advance (or of construction). */
  get lastAdvanceAt(): number {
    return this.advancedAt;
  }

  /** The path of the position file read. */
  get path(): string {
    return this.posFile;
  }

  /** The TXID now (read again when the last read is older than `cacheMs`); undefined without a file. */
  current(): number | undefined {
    if (!this.stopped && performance.now() - this.readAt >= this.cacheMs) this.read();
    return this.txid;
  }

  /**
   * Resolves true as soon as the TXID reaches `txid` (from a `tx` event or a read of the file),
   * false after `timeoutMs` or when `signal` aborts (or at {@link stop}). Never rejects.
   */
  waitFor(txid: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const now = this.current();
    if (now !== undefined && now >= txid) return Promise.resolve(true);
    if (this.stopped || signal?.aborted || timeoutMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onAbort = () => waiter.settle(false);
      const waiter: Waiter = {
        txid,
        deadline: performance.now() + timeoutMs,
        settle: (reached) => {
          if (!this.waiters.delete(waiter)) return;
          signal?.removeEventListener('abort', onAbort);
          if (this.waiters.size === 0) this.clearTimer();
          resolve(reached);
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.schedule();
    });
  }

  /** Resolves every waiter with false, unsubscribes from the events, stops reading. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const waiter of [...this.waiters]) waiter.settle(false);
    this.clearTimer();
  }

  private read(): void {
    this.readAt = performance.now();
    let text: string;
    try {
      text = readFileSync(this.posFile, 'utf8');
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ENOENT') this.warnOnce(`cannot read it (${String(error)})`);
      this.txid = undefined;
      return;
    }
    const value = parseLiteFsPosition(text);
    if (value === undefined) this.warnOnce(`malformed content ${JSON.stringify(text.slice(0, 40))}`);
    this.set(value?.txid);
  }

  private set(txid: number | undefined): void {
    this.readAt = performance.now();
    if (txid !== undefined && (this.txid === undefined || txid > this.txid)) this.advancedAt = this.readAt;
    this.txid = txid;
  }

  /** Settles the waiters whose TXID was reached or whose deadline passed; re-arms the timer for the rest. */
  private wake(): void {
    if (this.waiters.size === 0) return;
    const now = performance.now();
    const txid = this.txid;
    for (const waiter of [...this.waiters]) {
      if (txid !== undefined && txid >= waiter.txid) waiter.settle(true);
      else if (now >= waiter.deadline) waiter.settle(false);
    }
    this.schedule();
  }

  /** The one timer: the next poll of the file, or the earliest deadline if that comes first. */
  private schedule(): void {
    this.clearTimer();
    if (this.waiters.size === 0 || this.stopped) return;
    let earliest = Infinity;
    for (const waiter of this.waiters) earliest = Math.min(earliest, waiter.deadline);
    const delay = Math.max(0, Math.min(this.pollMs, earliest - performance.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.read();
      this.wake();
    }, delay);
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private warnOnce(message: string): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn(`LiteFS position ${this.posFile}: ${message}; the position is unknown meanwhile`);
  }
}
