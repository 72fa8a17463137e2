import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/**
 * A write that must run on this host's database file, asked of a host that is not the primary
 * (a LiteFS replica, or a node the `static` strategy names a replica): `run(closure)`, a
 * transparent repository write, or a write the database file refused because the primary moved
 * away. Nothing was written. Retryable: send it to {@link primary} (or retry once this host is
 * the primary again). Code `NOT_PRIMARY`.
 */
export class NotPrimaryError extends WriteCoordinatorError {
  /** The primary's hostname (LiteFS's `.primary`, or the `static` strategy's), when known. */
  readonly primary?: string;

  constructor(primary: string | undefined, options: WriteCoordinatorErrorOptions = {}) {
    super(
      'NOT_PRIMARY',
      `${describeJob(options)} was refused: this host is not the primary` +
        (primary === undefined ? ' (no primary known now)' : ` (the primary is ${primary})`),
      true,
      options,
    );
    if (primary !== undefined) this.primary = primary;
  }
}
