import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/**
 * A forwarded write committed on the primary, but this replica did not reach the primary's
 * position (its TXID) within the read-your-writes wait: a read here right now may not see the
 * write yet. Not retryable (the write is done: retrying with the same `meta.requestId` returns the
 * same outcome). {@link result} holds what the write returned. Code `REPLICATION_TIMEOUT`.
 */
export class ReplicationTimeoutError extends WriteCoordinatorError {
  /** The primary's position (TXID) just after the write committed. */
  readonly txid: number;
  /** This replica's position when the wait ended (undefined when unknown). */
  readonly position?: number;
  /** What the write returned on the primary. */
  readonly result: unknown;

  constructor(
    txid: number,
    position: number | undefined,
    waitedMs: number,
    result: unknown,
    options: WriteCoordinatorErrorOptions = {},
  ) {
    super(
      'REPLICATION_TIMEOUT',
      `${describeJob(options)} committed on the primary at TXID ${txid}, but this replica ` +
        `(${position === undefined ? 'position unknown' : `at TXID ${position}`}) did not catch up within ${waitedMs} ms`,
      false,
      options,
    );
    this.txid = txid;
    if (position !== undefined) this.position = position;
    this.result = result;
  }
}
