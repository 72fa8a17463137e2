import { WriteCoordinatorError } from './write-coordinator.error';

/**
 * A TypeORM write was issued outside a coordinator job while `writesOutsideJobs` is `'throw'`,
 * or a raw transaction statement (`BEGIN`, `COMMIT`, …) was sent outside a job; nothing was
 * written. Code `WRITE_OUTSIDE_JOB`.
 */
export class WriteOutsideJobError extends WriteCoordinatorError {
  /** The refused operation, e.g. `EntityManager.save` or `query`. */
  readonly operation: string;

  constructor(operation: string, reason: string) {
    super('WRITE_OUTSIDE_JOB', `${operation} was refused outside a coordinator job: ${reason}`, false);
    this.operation = operation;
  }
}
