import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** The job passed its deadline; it never ran, or its transaction was rolled back. Code `TIMEOUT`. */
export class TimeoutError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('TIMEOUT', `${describeJob(options)} timed out: ${detail}`, true, options);
  }
}
