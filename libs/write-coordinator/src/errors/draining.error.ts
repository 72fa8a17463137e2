import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** The coordinator is draining and refuses new work; the write was never queued. Code `DRAINING`. */
export class DrainingError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('DRAINING', `${describeJob(options)} was refused, the coordinator is draining: ${detail}`, true, options);
  }
}
