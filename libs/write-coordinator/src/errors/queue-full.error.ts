import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** The queue was full under `whenFull: 'reject'`; the write was never queued. Code `QUEUE_FULL`. */
export class QueueFullError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('QUEUE_FULL', `${describeJob(options)} was refused, the queue is full: ${detail}`, true, options);
  }
}
