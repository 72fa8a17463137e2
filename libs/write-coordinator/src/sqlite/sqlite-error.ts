/**
 * @internal The SQLite result code of an error from better-sqlite3, directly or wrapped by
 * TypeORM's `QueryFailedError` (`driverError`), e.g. `SQLITE_CONSTRAINT_UNIQUE`.
 */
export function sqliteCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_')) return code;
    e = (e as { driverError?: unknown }).driverError ?? (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** @internal True for errors meaning another connection holds the lock. */
export function isBusy(code: string | undefined): boolean {
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || (code?.startsWith('SQLITE_BUSY_') ?? false);
}

/** @internal True for UNIQUE / PRIMARY KEY violations. */
export function isConflict(code: string | undefined): boolean {
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Primary result codes meaning the database file itself cannot take writes. */
const STORAGE_CODES = [
  'SQLITE_FULL',
  'SQLITE_IOERR',
  'SQLITE_CORRUPT',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY',
  'SQLITE_NOTADB',
];

/** @internal True for errors of the storage (disk full, I/O error, corruption), not of the work. */
export function isStorageFailure(code: string | undefined): boolean {
  return code !== undefined && STORAGE_CODES.some((primary) => code === primary || code.startsWith(`${primary}_`));
}
