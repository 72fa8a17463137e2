import { isStorageFailure, sqliteCode } from './sqlite-error';

/** Whether the database is taking writes, as the last jobs saw it. Part of the metrics. */
export interface StorageStatus {
  /** True from a job failing on the storage (disk full, I/O error, …) until a job commits again. */
  failing: boolean;
  /** Storage failures since the last commit. */
  consecutiveFailures: number;
  /** Storage failures since bootstrap. */
  totalFailures: number;
  /** The latest storage failure, if any. */
  lastError?: { code: string; message: string; at: string };
}

/**
 * @internal Follows job outcomes and keeps the {@link StorageStatus}: a failure counts when its
 * SQLite code is a storage one (SQLITE_FULL, SQLITE_IOERR…), whether it came from the work's
 * statements or from COMMIT; a commit clears `failing`.
 */
export class StorageHealth {
  private consecutive = 0;
  private total = 0;
  private last: StorageStatus['lastError'];

  committed(): void {
    this.consecutive = 0;
  }

  /** This process stopped writing the file (it is no longer the primary): nothing is failing now. */
  clear(): void {
    this.consecutive = 0;
  }

  failed(error: unknown): void {
    const code = sqliteCode(error);
    if (!isStorageFailure(code)) return;
    this.consecutive++;
    this.total++;
    this.last = {
      code: code!,
      message: error instanceof Error ? error.message : String(error),
      at: new Date().toISOString(),
    };
  }

  status(): StorageStatus {
    const status: StorageStatus = {
      failing: this.consecutive > 0,
      consecutiveFailures: this.consecutive,
      totalFailures: this.total,
    };
    if (this.last) status.lastError = { ...this.last };
    return status;
  }
}
