/**
 * Stable error codes of the write coordinator. Callers branch on these, never on messages.
 */
export type WriteErrorCode =
  | 'QUEUE_FULL'
  | 'CANCELLED'
  | 'TIMEOUT'
  | 'DRAINING'
  | 'SHUTDOWN'
  | 'METHOD_NOT_FOUND'
  | 'INVALID_PARAMS'
  | 'CONFLICT'
  | 'BUSY'
  | 'INTERNAL'
  | 'INVALID_OPTIONS'
  | 'COORDINATOR_NOT_READY'
  | 'WRITE_OUTSIDE_JOB'
  | 'TRANSACTION_CONTROL'
  | 'UNAVAILABLE'
  | 'NOT_PRIMARY'
  | 'REPLICATION_TIMEOUT';

/** Extra context attached to a {@link WriteCoordinatorError}. */
export interface WriteCoordinatorErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Id of the job the error belongs to, when it had one. */
  jobId?: string;
  /** Label of the job the error belongs to, when it had one. */
  label?: string;
}

/**
 * Base class of every error the coordinator raises itself (errors thrown by user work are passed
 * through untouched).
 *
 * `retryable` is true only when the write certainly did not take effect and a retry may succeed.
 */
export class WriteCoordinatorError extends Error {
  /** Stable machine-readable code. */
  readonly code: WriteErrorCode;
  /** True only when the write certainly did not take effect and retrying may succeed. */
  readonly retryable: boolean;
  /** Id of the job this error belongs to, when it had one. */
  readonly jobId?: string;
  /** Label of the job this error belongs to, when it had one. */
  readonly label?: string;

  constructor(code: WriteErrorCode, message: string, retryable: boolean, options: WriteCoordinatorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = retryable;
    if (options.jobId !== undefined) this.jobId = options.jobId;
    if (options.label !== undefined) this.label = options.label;
  }
}

/** @internal Formats `job 7 ("label")` for messages. */
export function describeJob(options: WriteCoordinatorErrorOptions): string {
  if (options.jobId === undefined) return 'the write';
  return options.label ? `job ${options.jobId} ("${options.label}")` : `job ${options.jobId}`;
}
