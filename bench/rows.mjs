// What the benchmarks share: the one-row table they write to (`rows (id, v)`), a fresh WAL file
// per run, and the check of their integer flags.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as defaultTypeorm from 'typeorm';

const schemas = new WeakMap();

/** The `Row` entity schema (`rows`: integer id, integer v) of a TypeORM module (one per module instance). */
export function rowSchema(typeorm = defaultTypeorm) {
  let schema = schemas.get(typeorm);
  if (schema === undefined) {
    schema = new typeorm.EntitySchema({
      name: 'Row',
      tableName: 'rows',
      columns: { id: { type: 'integer', primary: true, generated: true }, v: { type: 'integer' } },
    });
    schemas.set(typeorm, schema);
  }
  return schema;
}

/** Fresh database files in a temporary directory of their own: `next()` names a new one. */
export function freshFiles(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let files = 0;
  return { dir, next: () => join(dir, `db-${files++}.sqlite`) };
}

/**
 * An initialised better-sqlite3 DataSource with the `rows` table, WAL on, on `database`.
 * @param extra more DataSource options (`verbose`, …)
 * @param typeorm the TypeORM module to build it with (that of the build being measured)
 */
export function openRows(database, extra = {}, typeorm = defaultTypeorm) {
  return new typeorm.DataSource({
    type: 'better-sqlite3',
    database,
    entities: [rowSchema(typeorm)],
    synchronize: true,
    enableWAL: true,
    ...extra,
  }).initialize();
}

/** `raw` as an integer of at least `min`, or exits naming the flag and the value received. */
export function integerFlag(name, raw, min = 1) {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    console.error(`--${name} must be an integer, ${min} or more (received '${raw}')`);
    process.exit(2);
  }
  return value;
}
