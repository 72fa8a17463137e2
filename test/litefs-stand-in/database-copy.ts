import Database from 'better-sqlite3';
import type { NodeFiles, Position } from './node-files';

/** A consistent copy of the primary's database and the position it is at. */
export interface Snapshot {
  position: Position;
  /** The database image (`sqlite3_serialize`), with its header set to rollback mode so it deserializes. */
  image: Buffer;
}

const GIVE_UP_MS = 10_000;
/** How long a demoted node's `-pos` must stand still before its snapshot is taken. */
const SETTLE_MS = 50;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const isBusy = (error: unknown) => error instanceof Database.SqliteError && /^SQLITE_(BUSY|LOCKED)/.test(error.code);

/** Resolves once the node's `-pos` did not change for {@link SETTLE_MS}. */
async function settled(files: NodeFiles): Promise<void> {
  let last = JSON.stringify(files.position());
  let since = Date.now();
  while (Date.now() - since < SETTLE_MS) {
    await sleep(5);
    const now = JSON.stringify(files.position());
    if (now !== last) [last, since] = [now, Date.now()];
  }
}

/**
 * Copies databases between the nodes through SQLite (never as raw files), so an application reading
 * a replica sees the state before a copy or after it, never a mix.
 */
export class DatabaseCopier {
  /** The controller's own connection per primary file (no agent in this process: it may write). */
  private readonly connections = new Map<string, Database.Database>();

  /**
   * Takes SQLite's write lock on `databasePath` (retrying while the application holds it: the agent
   * advances `-pos` while holding that lock), reads `-pos`, then the whole database, and lets go.
   * So the image holds every transaction up to the position, and none after.
   *
   * @throws {Error} if the lock stays taken for 10 s.
   */
  async snapshot(databasePath: string, files: NodeFiles, { demoted = false } = {}): Promise<Snapshot> {
    const db = this.connection(databasePath);
    if (demoted) {
      // A node that just stopped being the primary commits nothing more (its agent refuses), but
      // the application may keep taking the write lock (BEGIN IMMEDIATE succeeds on a replica) and
      // starve a locker. Once its -pos stood still for a moment, no commit is between its -pos
      // update and its COMMIT: a plain read transaction then sees exactly what -pos says.
      await settled(files);
      db.exec('BEGIN');
      db.prepare('SELECT COUNT(*) FROM sqlite_master').get();
    } else {
      const deadline = Date.now() + GIVE_UP_MS;
      for (;;) {
        try {
          db.exec('BEGIN IMMEDIATE');
          break;
        } catch (error) {
          if (!isBusy(error) || Date.now() > deadline) throw error;
          await sleep(2);
        }
      }
    }
    try {
      const position = files.position();
      const image = db.serialize();
      // A WAL-mode image does not deserialize; the backup into a WAL-mode replica sets WAL again.
      image[18] = 1;
      image[19] = 1;
      return { position, image };
    } finally {
      db.exec('ROLLBACK');
    }
  }

  /**
   * Replaces the content of `databasePath` with `image` by SQLite's backup API (one write
   * transaction on the replica file), retrying while a reader in rollback-journal mode blocks it.
   *
   * @throws {Error} if the replica stays locked for 10 s, or SQLite refuses the copy.
   */
  async restore(image: Buffer, databasePath: string): Promise<void> {
    const source = new Database(image);
    const deadline = Date.now() + GIVE_UP_MS;
    try {
      for (;;) {
        try {
          await source.backup(databasePath);
          return;
        } catch (error) {
          if (!isBusy(error) || Date.now() > deadline) throw error;
          await sleep(2);
        }
      }
    } finally {
      source.close();
    }
  }

  /** Closes the controller's connections. */
  close(): void {
    for (const db of this.connections.values()) db.close();
    this.connections.clear();
  }

  private connection(databasePath: string): Database.Database {
    let db = this.connections.get(databasePath);
    if (!db) {
      db = new Database(databasePath, { timeout: 0 });
      this.connections.set(databasePath, db);
    }
    return db;
  }
}
