import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Database, Statement } from 'better-sqlite3';
import { isBusy, sqliteCode } from './sqlite-error';
import type { ResolvedWalCheckpoint } from './wal-checkpoint.options';

/** The write-ahead log as the coordinator sees it, part of the metrics (`metrics().wal`). */
export interface WalMetrics {
  /** Size of the `-wal` file now, in bytes (0 without a WAL database). */
  bytes: number;
  /**
   * Largest size seen: read after commits while a limit is set (after every commit once past half
   * the limit, at most once per ms below it), and at every `metrics()`.
   */
  peakBytes: number;
  /** The `maxWalBytes` limit, or false when none is enforced (option off, no WAL, in-memory database). */
  maxWalBytes: number | false;
  /** Checkpoints run because the queue went idle: PASSIVE, or TRUNCATE while past the limit. */
  idleCheckpoints: number;
  /** TRUNCATE checkpoints that emptied the file (past the limit, or idle while past it). */
  truncations: number;
  /** TRUNCATE attempts that found a reader (or another process's writer) in the way, then retried. */
  busy: number;
  /** Times writes went on past the limit because readers kept the TRUNCATE out for `waitMs`. */
  gaveUp: number;
  /** Checkpoints that failed with an error other than busy (I/O error, disk full…), and failed reads of the file's size. */
  failed: number;
  /** Time the event loop spent inside checkpoints, in total and at most in one, in ms. */
  checkpointMs: { total: number; max: number };
  /** The latest checkpoint failure, if any. */
  lastError?: { code: string | undefined; message: string; at: string };
}

/** What the policy needs to know of the queue: whether anything runs or waits. */
export interface DrainState {
  metrics(): { readonly running: number; readonly queueDepth: number };
}

/** What the policy reads of a job it may hold. */
export interface HeldJob {
  /** Ends the wait early (deadline passed, aborted, shutdown). */
  readonly signal: AbortSignal;
  /** When the job must be answered at the latest (`performance.now()` time), if it has a deadline. */
  readonly deadlineAt?: number;
}

/** The result row of `PRAGMA wal_checkpoint(...)`. */
interface CheckpointRow {
  busy: number;
  log: number;
  checkpointed: number;
}

type Outcome = 'done' | 'busy' | 'failed';

/** Below half the limit, commits read the size of the `-wal` file at most this often (ms). */
const SAMPLE_INTERVAL_MS = 1;

/** Longest pause between two TRUNCATE attempts while readers hold the log. */
const MAX_BACKOFF_MS = 50;

/**
 * @internal The coordinator's checkpoint policy for one WAL database, run on the writing
 * connection and only while that connection has no transaction open:
 *
 * - after writes, once the queue is idle: a PASSIVE checkpoint (never waits for readers);
 * - once a commit left the `-wal` file past `maxWalBytes`: a TRUNCATE checkpoint before the next
 *   job begins, holding that job (asynchronously, with backoff) while readers still use the log,
 *   for at most `waitMs`. So the file exceeds the limit by at most the batch that crossed it.
 *
 * SQLite's own `wal_autocheckpoint` (PASSIVE, inside COMMIT, every 1000 pages by default) stays
 * on: it keeps the log short while readers let it, and this policy only steps in when they do not.
 * A checkpoint is synchronous (better-sqlite3) and blocks the event loop for its copy; a TRUNCATE
 * attempt runs with `busy_timeout` 0, so the waiting for readers happens between attempts, off
 * the event loop.
 */
export class WalCheckpointPolicy {
  private readonly walPath: string | undefined;
  private readonly passive: Statement | undefined;
  private readonly truncate: Statement | undefined;
  /** The connection's `busy_timeout`, put back after each TRUNCATE attempt (made with 0). */
  private readonly busyTimeoutMs: number = 0;
  private readonly idleMs: number = 0;
  private readonly maxWalBytes: number = Infinity;
  private readonly waitMs: number = 0;
  /** A commit left the file past the limit: the next job (or the idle timer) truncates first. */
  private truncateDue = false;
  /** When the first attempt of the TRUNCATE now due was made (`performance.now()`); NaN when none is. */
  private truncatingSince = Number.NaN;
  /** No TRUNCATE is asked for before this time (`performance.now()`), after giving up. */
  private holdOffUntil = 0;
  /** Commits since the last idle checkpoint. */
  private dirty = false;
  /** A commit happened since the idle timer was armed: the queue was not idle for `idleMs`. */
  private committedSinceArmed = false;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Set by {@link stop}: no more idle checkpoints. */
  private stopped = false;
  /** The last size read, and when a commit last read it (`performance.now()`). */
  private lastBytes = 0;
  private sampledAt = Number.NEGATIVE_INFINITY;

  private peakBytes = 0;
  private idleCheckpoints = 0;
  private truncations = 0;
  private busy = 0;
  private gaveUp = 0;
  private failed = 0;
  private totalMs = 0;
  private maxMs = 0;
  private lastError: WalMetrics['lastError'];

  /**
   * @param settings `false` reports the size of the log and never checkpoints.
   */
  constructor(
    private readonly db: Database,
    private readonly settings: ResolvedWalCheckpoint | false,
    private readonly drain: DrainState,
    private readonly warn: (message: string) => void,
    /** Reads the size of a file (0 when it does not exist); a seam for failing disks in specs. */
    private readonly sizeOf: (path: string) => number = fileSize,
  ) {
    const wal = !db.memory && String(db.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal';
    if (!wal) return;
    this.walPath = `${resolve(db.name)}-wal`;
    if (!settings) return;
    if (settings.idleMs !== false) {
      this.idleMs = settings.idleMs;
      this.passive = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
    }
    if (settings.maxWalBytes !== false) {
      this.maxWalBytes = settings.maxWalBytes;
      this.waitMs = settings.waitMs;
      this.truncate = db.prepare('PRAGMA wal_checkpoint(TRUNCATE)');
      this.busyTimeoutMs = Number(db.pragma('busy_timeout', { simple: true }));
    }
  }

  /** Told after every COMMIT on the writing connection (the transaction is closed, the drain held). */
  committed(): void {
    if (this.passive) {
      this.dirty = true;
      this.committedSinceArmed = true;
      if (this.idleTimer === undefined) this.armIdleTimer();
    }
    if (this.truncate && this.sampleDue() && this.sample() > this.maxWalBytes) {
      this.truncateDue = this.holdOffUntil === 0 || performance.now() >= this.holdOffUntil;
    }
  }

  /** Stops the idle timer: the coordinator gave the connection back (or it was closed). */
  stop(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.stopped = true;
  }

  /**
   * Whether a commit should read the file's size (a `stat`, about 2 µs): after every commit once
   * the last reading was past half the limit, else at most once per {@link SAMPLE_INTERVAL_MS}.
   * Below half the limit the file would have to grow by half the limit within that interval to
   * cross it unseen (32 MiB in 1 ms with the default limit).
   */
  private sampleDue(): boolean {
    if (this.lastBytes * 2 > this.maxWalBytes) return true;
    const now = performance.now();
    if (now - this.sampledAt < SAMPLE_INTERVAL_MS) return false;
    this.sampledAt = now;
    return true;
  }

  /**
   * Called as a job starts, before its BEGIN. When a TRUNCATE is due and no transaction is open,
   * returns a promise the job must await (it never rejects); otherwise undefined, at no cost.
   * A job is held for at most half the time left before its deadline: the policy never costs a
   * job its deadline; the TRUNCATE stays due for the next one.
   * @param job the job: its signal ends the wait early (read only when a wait is needed).
   */
  beforeJob(job: HeldJob): Promise<void> | undefined {
    if (!this.truncateDue || this.db.inTransaction) return undefined;
    return this.truncateBetweenJobs(job);
  }

  /** A snapshot; reads the size of the `-wal` file once. */
  metrics(): WalMetrics {
    const bytes = this.walPath === undefined ? 0 : this.sample();
    return {
      bytes,
      peakBytes: this.peakBytes,
      maxWalBytes: this.settings && this.walPath !== undefined ? this.settings.maxWalBytes : false,
      idleCheckpoints: this.idleCheckpoints,
      truncations: this.truncations,
      busy: this.busy,
      gaveUp: this.gaveUp,
      failed: this.failed,
      checkpointMs: { total: this.totalMs, max: this.maxMs },
      ...(this.lastError && { lastError: { ...this.lastError } }),
    };
  }

  /**
   * Retries the TRUNCATE with backoff while readers hold the log, for at most `waitMs` in all: the
   * clock starts with the first attempt and keeps running across jobs, so jobs whose deadlines
   * end their wait early cannot keep the limit from ever being given up on (and so held).
   */
  private async truncateBetweenJobs(job: HeldJob): Promise<void> {
    this.truncateDue = false;
    const { waitMs } = this;
    const startedAt = performance.now();
    if (Number.isNaN(this.truncatingSince)) this.truncatingSince = startedAt;
    const giveUpAt = this.truncatingSince + waitMs;
    const releaseAt = job.deadlineAt === undefined ? Infinity : startedAt + (job.deadlineAt - startedAt) / 2;
    for (let backoff = 1; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
      if (this.run(this.truncate!) !== 'busy') {
        this.truncatingSince = Number.NaN;
        return;
      }
      const remaining = giveUpAt - performance.now();
      if (remaining <= 0) {
        this.truncatingSince = Number.NaN;
        this.gaveUp++;
        this.holdOffUntil = performance.now() + waitMs;
        this.warn(
          `the -wal file is past maxWalBytes (${this.sample()} bytes) and readers kept a TRUNCATE checkpoint ` +
            `out for ${waitMs} ms: writes go on, the limit is enforced again in ${waitMs} ms`,
        );
        return;
      }
      if (performance.now() >= releaseAt) {
        this.truncateDue = true; // the job goes on (its deadline first); the next one tries again
        return;
      }
      const signal = job.signal;
      try {
        await sleep(Math.min(remaining, backoff, releaseAt - performance.now()), undefined, { signal });
      } catch {
        // The job ended (deadline, abort, shutdown): it will not commit. The next job retries,
        // on the same clock.
        this.truncateDue = true;
        return;
      }
      if (this.db.inTransaction) {
        this.truncateDue = true; // a write outside the coordinator opened one meanwhile
        return;
      }
    }
  }

  private armIdleTimer(): void {
    if (this.stopped) return;
    this.committedSinceArmed = false;
    this.idleTimer = setTimeout(this.onIdleTimer, this.idleMs);
    this.idleTimer.unref();
  }

  /** Fires `idleMs` after it was armed: checkpoints if nothing committed meanwhile and nothing runs. */
  private readonly onIdleTimer = (): void => {
    this.idleTimer = undefined;
    if (!this.db.open) return;
    if (this.committedSinceArmed || this.db.inTransaction || !this.queueIdle()) return this.armIdleTimer();
    if (!this.dirty) return;
    this.dirty = false;
    // Past the limit: one TRUNCATE attempt now; if readers are in the way, the next job retries.
    const outcome = this.truncateDue ? this.run(this.truncate!) : this.run(this.passive!);
    this.truncateDue &&= outcome === 'busy';
    if (outcome === 'done') this.idleCheckpoints++;
  };

  private queueIdle(): boolean {
    const { running, queueDepth } = this.drain.metrics();
    return running === 0 && queueDepth === 0;
  }

  /** Runs one checkpoint, timing it and counting its outcome. */
  private run(statement: Statement): Outcome {
    const truncating = statement === this.truncate;
    const startedAt = performance.now();
    let outcome: Outcome;
    try {
      // Not a prepared statement: SQLite applies `PRAGMA busy_timeout` when it compiles it.
      if (truncating) this.db.pragma('busy_timeout = 0');
      outcome = (statement.get() as CheckpointRow).busy ? 'busy' : 'done';
    } catch (error) {
      outcome = isBusy(sqliteCode(error)) ? 'busy' : 'failed';
      if (outcome === 'failed') this.fail(error);
    } finally {
      if (truncating) this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    }
    const ms = performance.now() - startedAt;
    this.totalMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
    if (truncating && outcome === 'busy') this.busy++;
    if (truncating && outcome === 'done') {
      this.truncations++;
      this.holdOffUntil = 0;
      this.sample();
    }
    return outcome;
  }

  private fail(error: unknown, what = 'WAL checkpoint failed'): void {
    this.failed++;
    const message = error instanceof Error ? error.message : String(error);
    const code = sqliteCode(error) ?? (error as NodeJS.ErrnoException | undefined)?.code;
    this.lastError = { code, message, at: new Date().toISOString() };
    try {
      this.warn(`${what}: ${message}`);
    } catch {
      // a logger that throws must not reach the commit hook either
    }
  }

  /**
   * Reads the size of the `-wal` file (0 when it does not exist) and keeps the peak. Never throws:
   * it runs in the commit hook, whose callers must settle every job of the batch. A failed read
   * (EIO, EACCES) counts as failed and keeps the last size known.
   */
  private sample(): number {
    let bytes: number;
    try {
      bytes = this.sizeOf(this.walPath!);
    } catch (error) {
      this.fail(error, 'could not read the size of the -wal file');
      return this.lastBytes;
    }
    this.lastBytes = bytes;
    if (bytes > this.peakBytes) this.peakBytes = bytes;
    return bytes;
  }
}

/** The size of the file at `path`, 0 when it does not exist. */
function fileSize(path: string): number {
  return statSync(path, { throwIfNoEntry: false })?.size ?? 0;
}

/** @internal The WAL metrics of a coordinator with no DataSource attached yet. */
export function noWalMetrics(settings: ResolvedWalCheckpoint | false): WalMetrics {
  return {
    bytes: 0,
    peakBytes: 0,
    maxWalBytes: settings ? settings.maxWalBytes : false,
    idleCheckpoints: 0,
    truncations: 0,
    busy: 0,
    gaveUp: 0,
    failed: 0,
    checkpointMs: { total: 0, max: 0 },
  };
}
