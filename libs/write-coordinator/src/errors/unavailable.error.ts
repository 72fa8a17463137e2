import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/**
 * A secondary could not reach the primary before the write's deadline (no primary, refused
 * handshake, primary going away): the write certainly did not run. Retryable. Code `UNAVAILABLE`.
 */
export class UnavailableError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('UNAVAILABLE', `${describeJob(options)} could not reach the primary: ${detail}`, true, options);
  }
}
