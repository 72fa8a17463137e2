import type { PrimaryElection, PrimaryView } from './primary-election';
import { PrimaryLock } from './primary-lock';

/**
 * @internal The `lock` strategy (one host): the process holding the primary lock next to the
 * shared database file is the primary; every process may write the file itself (`run()` and
 * transparent writes run locally on a secondary too), so nothing waits on the view.
 */
export class LockElection implements PrimaryElection {
  readonly strategy = 'lock';
  readonly writesNeedPrimary = false;

  /** @throws {PrimaryLockError} when the lock file cannot be opened. */
  constructor(readonly lock: PrimaryLock) {}

  /** Nothing to watch: the lock is polled by the role machine. */
  start(): Promise<void> {
    return Promise.resolve();
  }

  /** Primary while this election holds the lock; otherwise the socket's owner is (no hostname). */
  view(): PrimaryView {
    return this.lock.holds(this) ? { kind: 'primary' } : { kind: 'replica' };
  }

  /**
   * Takes the lock when it is free (never waits).
   * @throws {PrimaryLockError} on any failure other than "held elsewhere".
   */
  claim(): boolean {
    return this.lock.tryAcquire(this);
  }

  release(): void {
    this.lock.release(this);
  }

  /** The lock handle stays open for the life of the process (see {@link PrimaryLock.open}). */
  stop(): void {}
}
