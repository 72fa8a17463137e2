import { WriteCoordinatorError } from './write-coordinator.error';

/**
 * A raw transaction-control statement (`BEGIN`, `COMMIT`, `END`, `ROLLBACK`, `SAVEPOINT`,
 * `RELEASE`) was sent from inside a coordinator job. The job's transaction belongs to the
 * coordinator: a raw `COMMIT` would commit it half-way, a raw `ROLLBACK` would undo other jobs of
 * its batch. The statement was not run. Nest a level with `dataSource.transaction(fn)`,
 * `coordinator.run(fn)` or `queryRunner.startTransaction()` instead. Code `TRANSACTION_CONTROL`.
 */
export class TransactionControlError extends WriteCoordinatorError {
  /** The refused statement's first keyword, upper-cased (e.g. `COMMIT`). */
  readonly statement: string;

  constructor(statement: string, options: { jobId?: string } = {}) {
    super(
      'TRANSACTION_CONTROL',
      `a raw ${statement} was refused inside a coordinator job: the coordinator owns the job's transaction ` +
        '(it commits when the work returns and rolls back when it throws); nest a level with ' +
        'dataSource.transaction(fn), coordinator.run(fn) or queryRunner.startTransaction() instead',
      false,
      options,
    );
    this.statement = statement;
  }
}
