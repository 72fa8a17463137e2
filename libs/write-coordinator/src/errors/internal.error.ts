import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** An unexpected failure inside the coordinator or a handler; nothing was committed. Code `INTERNAL`. */
export class InternalError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('INTERNAL', `${describeJob(options)} failed: ${detail}`, false, options);
  }
}
