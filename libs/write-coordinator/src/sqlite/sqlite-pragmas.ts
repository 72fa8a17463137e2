import type { Database } from 'better-sqlite3';
import { InvalidOptionsError } from '../errors';

/** SQLite's `synchronous` levels; `FULL` makes every commit durable across power loss. */
export type SynchronousLevel = 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA';

/** @internal The PRAGMAs the coordinator owns on the writing connection. */
export interface WriterPragmas {
  readonly synchronous: SynchronousLevel;
  readonly foreignKeys: boolean;
  readonly busyTimeoutMs: number;
  /** WAL is required when a read connection serves reads outside jobs. */
  readonly requireWal: boolean;
}

const SYNCHRONOUS_VALUES: readonly SynchronousLevel[] = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

/**
 * @internal Applies the coordinator's PRAGMAs to the writing connection and reads each one back.
 * Must run while no transaction is open (SQLite ignores `foreign_keys` inside one).
 *
 * @throws {InvalidOptionsError} naming the option whose setting did not take effect.
 */
export function applyWriterPragmas(db: Database, pragmas: WriterPragmas): void {
  if (pragmas.requireWal) {
    const mode = String(db.pragma('journal_mode = WAL', { simple: true }));
    if (mode.toLowerCase() !== 'wal') {
      throw new InvalidOptionsError(
        'readIsolation',
        'a database that can use WAL journal mode (an in-memory or read-only database cannot; set readIsolation: false for it)',
        `journal_mode ${mode} on ${db.name}`,
      );
    }
  }
  db.pragma(`synchronous = ${pragmas.synchronous}`);
  verify(
    db,
    'synchronous',
    pragmas.synchronous,
    SYNCHRONOUS_VALUES[Number(db.pragma('synchronous', { simple: true }))],
  );
  db.pragma(`foreign_keys = ${pragmas.foreignKeys ? 'ON' : 'OFF'}`);
  verify(db, 'foreignKeys', pragmas.foreignKeys, Number(db.pragma('foreign_keys', { simple: true })) === 1);
  applyBusyTimeout(db, pragmas.busyTimeoutMs);
}

/** @internal Sets and verifies `PRAGMA busy_timeout` (both connections use it). */
export function applyBusyTimeout(db: Database, busyTimeoutMs: number): void {
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  verify(db, 'busyTimeoutMs', busyTimeoutMs, Number(db.pragma('busy_timeout', { simple: true })));
}

function verify(db: Database, field: string, expected: unknown, actual: unknown): void {
  if (actual !== expected) {
    throw new InvalidOptionsError(
      field,
      `a setting the database accepts (asked for ${JSON.stringify(expected)})`,
      `${JSON.stringify(actual)} after applying it on ${db.name}${db.inTransaction ? ' (a transaction was open)' : ''}`,
    );
  }
}
