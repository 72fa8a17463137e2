/** The reason a held transaction's job fails when its caller rolls it back. */
const ROLLED_BACK = Symbol('rolled back by its caller');

/**
 * @internal A transaction opened with `queryRunner.startTransaction()` outside a job. It runs as
 * a job that holds the drain until the caller calls `commitTransaction()` or
 * `rollbackTransaction()` (or the job is cancelled or passes its deadline).
 */
export class HeldTransaction {
  /** The job's outcome: resolves once committed, rejects when rolled back or failed. */
  outcome: Promise<unknown> = Promise.resolve();
  /**
   * True once the caller committed or rolled back. A commit that failed does not count: as with
   * TypeORM, whose transaction stays open after a failed COMMIT, the caller still rolls it back.
   */
  endedByCaller = false;
  private settle: ((commit: boolean) => void) | undefined;

  /** The job's work: waits for the caller's decision; rejects with the signal's reason on abort. */
  hold(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.settle = (commit) => {
        signal.removeEventListener('abort', onAbort);
        if (commit) resolve();
        else reject(ROLLED_BACK);
      };
    });
  }

  /**
   * Lets the job commit; resolves once committed, rejects with the reason it could not. After a
   * rejection the transaction is over (the job rolled it back), yet still the caller's to end: its
   * `rollbackTransaction()` then resolves quietly, so that the usual
   * `try { commit } catch (e) { rollback; throw e }` rethrows the commit's own error.
   */
  async commit(): Promise<void> {
    this.endedByCaller = true;
    this.settle?.(true);
    try {
      await this.outcome;
    } catch (error) {
      this.endedByCaller = false;
      throw error;
    }
  }

  /** Lets the job roll back; resolves once it ended without commit (whatever ended it). */
  async rollback(): Promise<void> {
    this.endedByCaller = true;
    this.settle?.(false);
    await this.outcome.catch(() => undefined);
  }
}
