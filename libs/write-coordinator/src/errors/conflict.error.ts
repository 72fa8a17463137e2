import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** A UNIQUE or PRIMARY KEY constraint was violated; nothing was written. Code `CONFLICT`. */
export class ConflictError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('CONFLICT', `${describeJob(options)} conflicts with existing data: ${detail}`, false, options);
  }
}
