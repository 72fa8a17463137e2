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
  /** True once the caller committed or rolled back. */
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

  /** Lets the job commit; resolves once committed, rejects with the reason it could not. */
  async commit(): Promise<void> {
    this.endedByCaller = true;
    this.settle?.(true);
    await this.outcome;
  }

  /** Lets the job roll back; resolves once it ended without commit (whatever ended it). */
  async rollback(): Promise<void> {
    this.endedByCaller = true;
    this.settle?.(false);
    await this.outcome.catch(() => undefined);
  }
}
