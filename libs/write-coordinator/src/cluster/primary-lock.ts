/**
 * The primary lock of a cluster in `role: 'auto'`: whoever holds it is the primary, for as long as
 * it holds it. It is an exclusive OS-level lock that the kernel releases when the holding process
 * dies (SIGKILL included), so no lease and no clock is involved on one host.
 *
 * How it is held (measured on better-sqlite3 12.11 / Linux, see primary-lock.spec.ts): the lock
 * file is a SQLite database of its own (empty, never written) in rollback-journal mode; an open
 * `BEGIN EXCLUSIVE` transaction on it holds SQLite's EXCLUSIVE file lock (POSIX `fcntl` byte-range
 * locks), which every other process's `BEGIN EXCLUSIVE` then meets as `SQLITE_BUSY` at once
 * (`busy_timeout = 0`). `ROLLBACK` releases it; so does the death of the process. The journal is
 * kept in memory (`journal_mode = MEMORY`) so that no `-journal` file appears beside it.
 * (`locking_mode = EXCLUSIVE` would also keep the lock after `COMMIT`, but releasing it then takes
 * `locking_mode = NORMAL` plus a read; an open transaction is simpler and says what it does.)
 *
 * POSIX locks belong to the process, and closing ANY descriptor of the file drops all of them:
 * the file must never be opened by anything else in this process (not even `fs.readFileSync`). So
 * there is one handle per lock file per process ({@link PrimaryLock.open} returns the same object
 * for every spelling of the path), it is never closed, and within the process at most one owner
 * holds the lock at a time.
 */
import Database from 'better-sqlite3';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** Suffix of the lock file, appended to the database's path. */
const LOCK_SUFFIX = '.primary-lock';

/** Every lock file this process has opened, by real path, shared by every copy of this module. */
const REGISTRY_KEY = Symbol.for('nestjs-sqlite-write-coordinator/primary-locks');

/**
 * The path of the primary lock file of a database: `<database>.primary-lock`, next to it.
 *
 * @param databasePath the SQLite database's path (relative paths resolve against the working directory).
 * @returns the absolute path of its lock file.
 * @throws {PrimaryLockError} for an in-memory or unnamed database, which has no file to lock beside.
 */
export function primaryLockPath(databasePath: string): string {
  if (databasePath === '' || databasePath === ':memory:' || databasePath.startsWith('file:')) {
    throw new PrimaryLockError(
      databasePath,
      `a primary lock needs a database file path (received ${JSON.stringify(databasePath)})`,
    );
  }
  return resolve(databasePath) + LOCK_SUFFIX;
}

/** A primary lock file could not be opened or used (anything but "another holder has it"). */
export class PrimaryLockError extends Error {
  /** The lock file's path. */
  readonly path: string;

  constructor(path: string, message: string, cause?: unknown) {
    super(`primary lock ${path}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.path = path;
  }
}

/**
 * An exclusive lock on one lock file, shared by every owner (e.g. every coordinator) of this
 * process. Non-blocking: callers poll {@link tryAcquire}.
 *
 * @example
 * const lock = PrimaryLock.open(primaryLockPath('/data/app.db'));
 * if (lock.tryAcquire(this)) becomePrimary();
 * // …on graceful shutdown, after draining:
 * lock.release(this);
 */
export class PrimaryLock {
  /** The real path of the lock file (symlinks and `.`/`..` segments resolved). */
  readonly path: string;
  private readonly db: Database.Database;
  /**
   * Who holds the lock in this process. Invariant: the OS lock is held (a `BEGIN EXCLUSIVE`
   * transaction is open on {@link db}) exactly when this is defined.
   */
  private holder: object | undefined;
  private journalInMemory = false;

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.db = db;
  }

  /**
   * The lock of `lockPath`, opening the file (and creating it, empty) the first time this process
   * asks for it; every later call for the same file, however spelled, returns the same object.
   * The handle stays open for the life of the process: it is never closed (closing it is never
   * needed, and one descriptor per lock file is the whole cost).
   *
   * @param lockPath the lock file, usually {@link primaryLockPath}`(databasePath)`.
   * @throws {PrimaryLockError} when its directory does not exist or the file cannot be opened.
   */
  static open(lockPath: string): PrimaryLock {
    const path = realLockPath(lockPath);
    const registry = processRegistry();
    let lock = registry.get(path);
    if (lock === undefined) {
      let db: Database.Database;
      try {
        db = new Database(path, { timeout: 0 });
      } catch (error) {
        throw new PrimaryLockError(path, `cannot open the lock file (${errorText(error)})`, error);
      }
      lock = new PrimaryLock(path, db);
      registry.set(path, lock);
    }
    return lock;
  }

  /**
   * Takes the lock for `owner` if nobody holds it. Never waits.
   *
   * @param owner any object identifying the holder inside this process (compared by identity).
   * @returns true if `owner` now holds the lock (or already held it); false if another process or
   *   another owner of this process holds it.
   * @throws {PrimaryLockError} on any failure other than "held elsewhere" (e.g. the path is not a
   *   SQLite database).
   */
  tryAcquire(owner: object): boolean {
    if (this.holder !== undefined) return this.holder === owner;
    try {
      // Switching the journal mode reads the file (a shared lock): it is busy, too, while
      // another process holds the lock, so it is retried here until it has been done once.
      if (!this.journalInMemory) {
        const mode: unknown = this.db.pragma('journal_mode = MEMORY', { simple: true });
        if (mode !== 'memory') {
          throw new PrimaryLockError(this.path, `journal_mode stays ${String(mode)}; delete this file`);
        }
        this.journalInMemory = true;
      }
      this.db.exec('BEGIN EXCLUSIVE');
    } catch (error) {
      if (isBusy(error)) return false;
      if (error instanceof PrimaryLockError) throw error;
      throw new PrimaryLockError(this.path, `cannot take the lock (${errorText(error)})`, error);
    }
    this.holder = owner;
    return true;
  }

  /**
   * Gives the lock up if `owner` holds it (does nothing otherwise): another process, or another
   * owner of this one, can take it at once. The file stays open.
   *
   * @throws {PrimaryLockError} if SQLite fails to end the transaction (the lock then stays held).
   */
  release(owner: object): void {
    if (this.holder !== owner) return;
    try {
      this.db.exec('ROLLBACK');
    } catch (error) {
      throw new PrimaryLockError(this.path, `cannot release the lock (${errorText(error)})`, error);
    }
    this.holder = undefined;
  }

  /** True if `owner` holds the lock. */
  holds(owner: object): boolean {
    return this.holder === owner;
  }
}

function processRegistry(): Map<string, PrimaryLock> {
  const global = globalThis as { [REGISTRY_KEY]?: Map<string, PrimaryLock> };
  return (global[REGISTRY_KEY] ??= new Map());
}

/** The file's real path, or its real directory plus its name when it does not exist yet. */
function realLockPath(lockPath: string): string {
  const absolute = resolve(lockPath);
  try {
    return realpathSync.native(absolute);
  } catch (error) {
    if (codeOf(error) !== 'ENOENT') {
      throw new PrimaryLockError(absolute, `cannot resolve the path (${errorText(error)})`, error);
    }
  }
  try {
    return join(realpathSync.native(dirname(absolute)), basename(absolute));
  } catch (error) {
    const reason = codeOf(error) === 'ENOENT' ? 'its directory does not exist' : errorText(error);
    throw new PrimaryLockError(absolute, `cannot open the lock file (${reason})`, error);
  }
}

function isBusy(error: unknown): boolean {
  return codeOf(error)?.startsWith('SQLITE_BUSY') ?? false;
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorText(error: unknown): string {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return code === undefined ? message : `${code}: ${message}`;
}
