import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** No ready coordinator was available for the call; nothing was written. Code `COORDINATOR_NOT_READY`. */
export class CoordinatorNotReadyError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('COORDINATOR_NOT_READY', `${describeJob(options)} has no coordinator: ${detail}`, true, options);
  }
}
