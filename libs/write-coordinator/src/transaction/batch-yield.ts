import type { BatchYield } from '../core/coordinator-options';

/**
 * A yield pays when the COMMIT it may save costs at least this many times what a yield that
 * brought nothing cost. At 10, a lone caller pays at most a tenth of a COMMIT for every useless yield.
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
 * useless yield.
 */
export class BatchYieldPolicy {
  private commitMs = 0;
  private idleYieldMs = INITIAL_IDLE_YIELD_MS;
  /** When the yield in progress (or the last one) started; NaN once accounted for. */
  private yieldStartedAt = Number.NaN;

  constructor(private readonly mode: BatchYield) {}

  /** Records what a COMMIT cost (ms). */
  committed(ms: number): void {
    this.commitMs += COMMIT_WEIGHT * (ms - this.commitMs);
  }

  /** True when a batch whose queue is empty should yield before its COMMIT. */
  get worthIt(): boolean {
    if (this.mode === 'auto') return this.commitMs >= PAYOFF * this.idleYieldMs;
    return this.mode === 'always';
  }

  /** Lets the event loop run once (I/O callbacks included). */
  yield(): Promise<void> {
    this.yieldStartedAt = performance.now();
    return nextMacrotask();
  }

  /** Tells the policy whether the last yield brought a job; one that did not counts as its cost. */
  yielded(broughtJob: boolean): void {
    if (Number.isNaN(this.yieldStartedAt)) return;
    if (!broughtJob)
      this.idleYieldMs = Math.min(this.idleYieldMs * YIELD_DRIFT, performance.now() - this.yieldStartedAt);
    this.yieldStartedAt = Number.NaN;
  }
}
