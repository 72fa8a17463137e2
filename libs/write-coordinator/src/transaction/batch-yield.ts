import type { BatchYield } from '../core/coordinator-options';

/**
 * A yield pays when the COMMIT it may save costs at least this many times what a yield that
 * brought nothing cost by itself (not counting other callbacks that ran meanwhile: that work was
 * due anyway, though the batch's members wait for it too).
 */
const PAYOFF = 10;

/** Cost assumed for a useless yield before the first one is measured (ms). */
const INITIAL_IDLE_YIELD_MS = 0.02;

/** Weight of the newest COMMIT in its running average. */
const COMMIT_WEIGHT = 0.2;

/**
 * How fast the estimate of a useless yield's cost may rise per yield (it falls at once to any
 * cheaper one): the estimate tracks the yield's own cost, not the time other callbacks or other
 * processes took the CPU during it.
 */
const YIELD_DRIFT = 1.05;

/**
 * `'auto'` backs off after useless yields: after n in a row it yields only once every 2^n chances,
 * up to once every this many. A lone caller then pays a yield every 16th job; one yield that brings
 * a job (traffic arrived) makes it yield at every chance again.
 */
const MAX_BACKOFF = 16;

/** Least time before a member's deadline for which a batch still yields (ms). */
const MIN_SLACK_MS = 10;

/** A batch yields only when its slack is this many times what recent yields took. */
const SLACK_FACTOR = 4;

/** Weight of the newest yield in the running average of what yields take. */
const YIELD_WEIGHT = 0.2;

/** Resolves in the check phase of the event loop, after the pending I/O callbacks ran. */
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * @internal Decides whether a group-commit batch whose queue is empty lets the event loop run
 * once before its COMMIT (`batchYield`), and performs that yield.
 *
 * better-sqlite3 is synchronous: a job that only touches the database runs from BEGIN to COMMIT
 * without giving the event loop a turn, so requests waiting on sockets are parsed only after the
 * COMMIT (and its fsync) and never find a batch to join. One `setImmediate` lets libuv's poll
 * phase deliver them first; their jobs queue behind the running one and the batch takes them.
 *
 * `'auto'` weighs the two costs it measures as it goes: the COMMIT (running average) and a yield
 * that brought no job (a floor that rises slowly: what other callbacks did during a yield is work
 * that had to be done anyway, and a yield that delivered requests ran their handlers, the app's
 * work, not the yield's). It yields while the COMMIT costs at least {@link PAYOFF} times a
 * useless yield, and backs off while yields bring nothing ({@link MAX_BACKOFF}).
 */
export class BatchYieldPolicy {
  private commitMs = 0;
  private idleYieldMs = INITIAL_IDLE_YIELD_MS;
  /** `'auto'`: yields to skip before the next one, after useless ones (exponential back-off). */
  private skips = 0;
  private backoff = 1;
  /** Running average of what yields took, useful or not (ms): how long the next one may take. */
  private yieldMs = 0;
  /** When the yield in progress (or the last one) started; NaN once accounted for. */
  private yieldStartedAt = Number.NaN;

  constructor(private readonly mode: BatchYield) {}

  /** Records what a COMMIT cost (ms). */
  committed(ms: number): void {
    this.commitMs += COMMIT_WEIGHT * (ms - this.commitMs);
  }

  /**
   * True when a batch whose queue is empty should yield before its COMMIT.
   * @param slackMs time left before the batch must commit to answer its members by their
   *   deadlines (Infinity when none has one). A yield cannot be cut short (it ends when the event
   *   loop gets round to it), so the batch yields only with a slack of at least
   *   {@link MIN_SLACK_MS} and {@link SLACK_FACTOR} times what recent yields took.
   */
  worthIt(slackMs = Infinity): boolean {
    if (this.mode === 'never' || slackMs < Math.max(MIN_SLACK_MS, SLACK_FACTOR * this.yieldMs)) return false;
    if (this.mode === 'always') return true;
    if (this.commitMs < PAYOFF * this.idleYieldMs) return false;
    if (this.skips === 0) return true;
    this.skips--;
    return false;
  }

  /** Lets the event loop run once (I/O callbacks included). */
  yield(): Promise<void> {
    this.yieldStartedAt = performance.now();
    return nextMacrotask();
  }

  /** Tells the policy whether the last yield brought a job; one that did not counts as its cost. */
  yielded(broughtJob: boolean): void {
    if (Number.isNaN(this.yieldStartedAt)) return;
    const ms = performance.now() - this.yieldStartedAt;
    this.yieldMs += YIELD_WEIGHT * (ms - this.yieldMs);
    if (broughtJob) {
      this.backoff = 1;
      this.skips = 0;
    } else {
      this.idleYieldMs = Math.min(this.idleYieldMs * YIELD_DRIFT, ms);
      this.backoff = Math.min(2 * this.backoff, MAX_BACKOFF);
      this.skips = this.backoff - 1;
    }
    this.yieldStartedAt = Number.NaN;
  }
}
