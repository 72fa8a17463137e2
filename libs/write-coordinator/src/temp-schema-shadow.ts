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
  private readonly writerNames: Statement;
  /** The writer's names the placeholders stand for; '' while there are none. */
  private mirrored = '';

  constructor(
    private readonly reader: Database,
    writer: Database,
  ) {
    this.writerNames = writer.prepare(TEMP_NAMES).pluck();
  }

  /** True when the writer had TEMP tables or views at the last {@link sync}. */
  get active(): boolean {
    return this.mirrored !== '';
  }

  /**
   * Brings the placeholders in line with the writer's TEMP names now (one synchronous read of the
   * writer's TEMP schema, which leaves a running job's transaction alone). Returns true when they changed, so that
   * verdicts taken before are stale. Compares the names themselves: `PRAGMA temp.schema_version`
   * goes back on a rollback, and may then reach the same value again with other tables.
   */
  sync(): boolean {
    const names = this.writerNamesNow();
    if (names === this.mirrored) return false;
    const wanted = names ? names.split('\0') : [];
    const previous = this.mirrored ? this.mirrored.split('\0') : [];
    const own = new Map(
      (
        this.reader
          .prepare("SELECT name, type FROM temp.sqlite_schema WHERE type IN ('table', 'view')")
          .all() as Array<{
          name: string;
          type: string;
        }>
      ).map((row) => [row.name, row.type]),
    );
    const statements: string[] = [];
    for (const name of new Set([...previous, ...wanted])) {
      const type = own.get(name);
      if (type) statements.push(`DROP ${type === 'view' ? 'VIEW' : 'TABLE'} temp.${quote(name)}`);
    }
    for (const name of wanted) statements.push(`CREATE TEMP VIEW ${quote(name)} AS SELECT * FROM ${NOWHERE}`);
    this.reader.exec(statements.join(';\n'));
    this.mirrored = names;
    return true;
  }

  private writerNamesNow(): string {
    try {
      return (this.writerNames.get() as string | null) ?? '';
    } catch {
      return this.mirrored; // the writer is closed: a read fails there too, wherever it is sent
    }
  }
}
