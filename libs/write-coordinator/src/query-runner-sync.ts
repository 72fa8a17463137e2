import type { DataSource, QueryRunner } from 'typeorm';

/**
 * @internal Whether the DataSource's native better-sqlite3 connection is inside a transaction;
 * undefined for drivers that do not expose it.
 */
export function nativeInTransaction(dataSource: DataSource): boolean | undefined {
  const connection = (dataSource.driver as { databaseConnection?: { inTransaction?: unknown } }).databaseConnection;
  return typeof connection?.inTransaction === 'boolean' ? connection.inTransaction : undefined;
}

/**
 * @internal Brings TypeORM's view of the shared query runner back in line with the connection
 * after a job: SQLite may have ended the transaction itself (SQLITE_FULL, SQLITE_IOERR roll it
 * back, and TypeORM's failed ROLLBACK then leaves `isTransactionActive` and the depth set), or
 * failed work may have left levels open. Left as is, every later job would run in savepoints of
 * a transaction that never commits. Called only when the job did not commit.
 */
export async function resyncAfterJob(
  dataSource: DataSource,
  runner: QueryRunner,
  query: (sql: string) => Promise<unknown> = (sql) => runner.query(sql),
): Promise<void> {
  const inTransaction = nativeInTransaction(dataSource);
  if (inTransaction === undefined) return;
  if (inTransaction) await query('ROLLBACK');
  const state = runner as unknown as { isTransactionActive: boolean; transactionDepth: number };
  state.isTransactionActive = false;
  state.transactionDepth = 0;
}
