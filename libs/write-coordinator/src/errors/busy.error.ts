import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** The database was locked by another connection; nothing was written. Code `BUSY`. */
export class BusyError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('BUSY', `${describeJob(options)} found the database busy: ${detail}`, true, options);
  }
}
