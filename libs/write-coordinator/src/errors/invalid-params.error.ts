import { describeJob, WriteCoordinatorError, WriteCoordinatorErrorOptions } from './write-coordinator.error';

/**
 * The params of a `submit()` request were rejected (by the handler's `validate`, or because the
 * handler threw it); nothing was written. Code `INVALID_PARAMS`. Handlers may throw it themselves.
 *
 * @example
 * if (typeof params.amount !== 'number') throw new InvalidParamsError('amount must be a number');
 */
export class InvalidParamsError extends WriteCoordinatorError {
  constructor(detail: string, options: WriteCoordinatorErrorOptions = {}) {
    super('INVALID_PARAMS', `${describeJob(options)} has invalid params: ${detail}`, false, options);
  }
}
