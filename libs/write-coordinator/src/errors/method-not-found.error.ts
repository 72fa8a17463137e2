import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/** `submit()` named a method no `@WriteHandler` is registered for. Code `METHOD_NOT_FOUND`. */
export class MethodNotFoundError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('METHOD_NOT_FOUND', `${describeJob(options)} names an unknown method: ${detail}`, false, options);
  }
}
