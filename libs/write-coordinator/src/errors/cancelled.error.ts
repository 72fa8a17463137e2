import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** The caller's signal aborted the job; it never ran, or its transaction was rolled back. Code `CANCELLED`. */
export class CancelledError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('CANCELLED', `${describeJob(options)} was cancelled: ${detail}`, true, options);
  }
}
