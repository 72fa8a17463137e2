import Database from 'better-sqlite3';
import type { NodeFiles, Position } from './node-files';

/** A consistent copy of the primary's database and the position it is at. */
export interface Snapshot {
  position: Position;
  /** The database image (`sqlite3_serialize`), with its header set to rollback mode so it deserializes. */
  image: Buffer;
}

const GIVE_UP_MS = 10_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const isBusy = (error: unknown) => error instanceof Database.SqliteError && /^SQLITE_(BUSY|LOCKED)/.test(error.code);

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
  async snapshot(databasePath: string, files: NodeFiles): Promise<Snapshot> {
    const db = this.connection(databasePath);
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
