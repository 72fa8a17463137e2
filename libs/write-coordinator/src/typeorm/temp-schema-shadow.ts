import type { Database, Statement } from 'better-sqlite3';

/** The names of a connection's TEMP tables and views, '\0'-separated, or NULL when it has none. */
const TEMP_NAMES = `SELECT group_concat(name, char(0)) FROM (
  SELECT name FROM temp.sqlite_schema WHERE type IN ('table', 'view') ORDER BY name)`;

/** What every placeholder selects from: a table that never exists, so that it fails to prepare. */
const NOWHERE = '"write-coordinator: a TEMP object of the writing connection"';

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * @internal Mirrors the NAMES of the writer's TEMP tables and views on the read connection: one
 * placeholder view each, which fails to prepare. A statement that uses the writer's TEMP schema,
 * by `temp.` or by a name a TEMP table shadows, then fails to prepare on the read connection, and
 * is sent to the writer, like any statement the read connection lacks the schema for.
 *
 * The read connection's own TEMP objects of the same names (made by a `prepareDatabase` hook on
 * both connections) are dropped: they are other tables than the writer's, with other rows.
 */
export class TempSchemaShadow {
  private readonly writerVersion: Statement;
  private readonly writerNames: Statement;
  /** The writer's names the placeholders stand for; '' while there are none. */
  private mirrored = '';
  /**
   * `PRAGMA temp.schema_version` when {@link mirrored} was read outside a transaction, else -1.
   * Committed TEMP schemas only ever move it forward, so the same value outside a transaction is
   * the same schema. Inside one it proves nothing: a rollback winds it back, and the same value
   * may come again with other tables.
   */
  private committedVersion = -1;

  constructor(
    private readonly reader: Database,
    private readonly writer: Database,
  ) {
    this.writerVersion = writer.prepare('PRAGMA temp.schema_version').pluck();
    this.writerNames = writer.prepare(TEMP_NAMES).pluck();
  }

  /** True when the writer had TEMP tables or views at the last {@link sync}. */
  get active(): boolean {
    return this.mirrored !== '';
  }

  /**
   * Brings the placeholders in line with the writer's TEMP names now: synchronous reads of the
   * writer's TEMP schema version (and names, when it may have changed), which leave a running
   * job's transaction alone. Returns true when the placeholders changed, so that verdicts taken
   * before are stale.
   */
  sync(): boolean {
    let names: string;
    try {
      const version = this.writerVersion.get() as number;
      if (version === this.committedVersion) return false;
      names = (this.writerNames.get() as string | null) ?? '';
      this.committedVersion = this.writer.inTransaction ? -1 : version;
    } catch {
      return false; // the writer is closed: a read fails there too, wherever it is sent
    }
    if (names === this.mirrored) return false;
    this.replacePlaceholders(names ? names.split('\0') : []);
    this.mirrored = names;
    return true;
  }

  private replacePlaceholders(wanted: string[]): void {
    const own = this.reader
      .prepare("SELECT name, type FROM temp.sqlite_schema WHERE type IN ('table', 'view')")
      .all() as Array<{ name: string; type: string }>;
    const stale = new Set([...(this.mirrored ? this.mirrored.split('\0') : []), ...wanted]);
    const statements = own
      .filter((row) => stale.has(row.name))
      .map((row) => `DROP ${row.type === 'view' ? 'VIEW' : 'TABLE'} temp.${quote(row.name)}`);
    for (const name of wanted) statements.push(`CREATE TEMP VIEW ${quote(name)} AS SELECT * FROM ${NOWHERE}`);
    this.reader.exec(statements.join(';\n'));
  }
}
