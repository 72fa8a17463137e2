import type { Database } from 'better-sqlite3';
import { InvalidOptionsError } from '../errors';

/** @internal TypeORM's better-sqlite3 `prepareDatabase` option: per-connection set-up. */
export type PrepareDatabase = (db: Database) => void | PromiseLike<void>;

interface DatabaseListRow {
  name: string;
  file: string;
}

/**
 * @internal Repeats the writer's connection set-up on the read connection, in TypeORM's order:
 * the `prepareDatabase` hook (custom functions, aggregates, loaded extensions and their
 * collations), then the writer's attached databases ({@link mirrorAttachedDatabases}). Returns a
 * promise only when the hook does.
 *
 * @throws {InvalidOptionsError} (field `prepareDatabase`) when the hook throws on the read-only
 *   connection; a promise it returns rejects with the same error.
 */
export function setUpReadConnection(
  reader: Database,
  writer: Database,
  hook: PrepareDatabase | undefined,
): void | Promise<void> {
  let prepared: void | PromiseLike<void>;
  try {
    prepared = hook?.(reader);
  } catch (error) {
    throw hookFailed(error);
  }
  if (prepared && typeof prepared.then === 'function') {
    return Promise.resolve(prepared).then(
      () => mirrorAttachedDatabases(reader, writer),
      (error: unknown) => {
        throw hookFailed(error);
      },
    );
  }
  return mirrorAttachedDatabases(reader, writer);
}

/**
 * @internal Attaches on the read connection every database attached on the writer (`PRAGMA
 * database_list` minus `main` and `temp`), under the same name, read-only like the connection.
 * TypeORM attaches one per entity `database` option. Left out, so that reads of them go to the
 * writer: an in-memory attachment (no file to share), one not in WAL mode (a reader of a rollback
 * journal database could block the writer's commit), and one the read connection fails to open.
 */
export function mirrorAttachedDatabases(reader: Database, writer: Database): void {
  const present = new Set((reader.pragma('database_list') as DatabaseListRow[]).map((row) => row.name));
  for (const { name, file } of writer.pragma('database_list') as DatabaseListRow[]) {
    // `present`: attached by the hook itself, on both connections.
    if (name === 'main' || name === 'temp' || present.has(name) || !file || !isWal(writer, name)) continue;
    try {
      reader.prepare('ATTACH ? AS ?').run(file, name);
    } catch {
      // Not mirrored: a read of it fails to prepare here and goes to the writer.
    }
  }
}

function isWal(db: Database, name: string): boolean {
  const mode = db.pragma(`"${name.replace(/"/g, '""')}".journal_mode`, { simple: true });
  return String(mode).toLowerCase() === 'wal';
}

function hookFailed(error: unknown): InvalidOptionsError {
  const reason = error instanceof Error ? error.message : String(error);
  return new InvalidOptionsError(
    'prepareDatabase',
    'a hook that also runs on a read-only connection (with readIsolation on, it runs on the read ' +
      'connection too: check db.readonly before writing), or set readIsolation: false',
    `a hook that threw on the read connection: ${reason}`,
  );
}
