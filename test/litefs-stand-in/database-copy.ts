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

/**
 * Resolves once the node's `-pos` did not change for {@link SETTLE_MS}: on a node that just stopped
 * being the primary (its agent commits nothing more), no commit is then between its `-pos` update
 * and its COMMIT, so its `-pos` names exactly what a read transaction sees.
 */
export async function settledPosition(files: NodeFiles): Promise<Position> {
  let last = JSON.stringify(files.position());
  let since = Date.now();
  while (Date.now() - since < SETTLE_MS) {
    await sleep(5);
    const now = JSON.stringify(files.position());
    if (now !== last) [last, since] = [now, Date.now()];
  }
  return files.position();
}

/**
 * Copies databases between the nodes through SQLite (never as raw files), so an application reading
 * a replica sees the state before a copy or after it, never a mix.
 */
export class DatabaseCopier {
  /** The controller's own connection per primary file (no agent in this process: it may write). */
  private readonly connections = new Map<string, Database.Database>();

  /**
   * The whole database as one read transaction sees it, labelled `position`. The caller vouches
   * that every transaction up to `position` committed before this call (so the image holds them);
   * it may hold later ones too: a replica is then labelled behind what it has, never ahead. No lock
   * is taken: a busy primary (group commit takes the write lock back at once) cannot starve it.
   */
  snapshot(databasePath: string, position: Position): Snapshot {
    const db = this.connection(databasePath);
    db.exec('BEGIN');
    try {
      db.prepare('SELECT COUNT(*) FROM sqlite_master').get(); // the read transaction starts here
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
