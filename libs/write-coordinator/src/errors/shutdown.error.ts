import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** The coordinator is shut down; the write was never run. Code `SHUTDOWN`. */
export class ShutdownError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('SHUTDOWN', `${describeJob(options)} was refused, the coordinator is shut down: ${detail}`, true, options);
  }
}
