// Counts the SQL statements every better-sqlite3 connection of this process executes, for the
// benchmark's "statements per job" column, and optionally the rows inserted per committed
// transaction (to replay the batches a coordinator formed).
//
// How: `Database.prototype.exec` and the statement methods that execute (`run`, `get`, `all`,
// `iterate`) are wrapped once. So it counts executions, not preparations: a cached prepared
// statement run 1,000 times counts 1,000, and preparing one without running it counts nothing.
// TypeORM's queries, the coordinator's BEGIN/SAVEPOINT/RELEASE/COMMIT (through `exec` or prepared
// statements), `job.statement()`, PRAGMAs and better-sqlite3's `db.transaction()` all go through
// these methods. One `exec()` call counts as one statement: every caller passes one, except the
// coordinator's rollback of a failed batch member (ROLLBACK TO + RELEASE), which this workload never
// triggers.
// The wrapper costs a few tens of ns per statement; every contender pays it alike.
import Database from 'better-sqlite3';

const counts = { statements: 0 };
/** When set, rows inserted since the last COMMIT, and the sizes of the committed transactions. */
let batches;

function track(sql) {
  const c = sql.charCodeAt(0);
  if (c === 73 /* I */ && sql.startsWith('INSERT')) batches.rows++;
  else if (c === 67 /* C */ && sql.startsWith('COMMIT')) {
    if (batches.rows > 0) batches.sizes.push(batches.rows);
    batches.rows = 0;
  } else if (c === 82 /* R */ && sql.startsWith('ROLLBACK') && !/^ROLLBACK\s+(TRANSACTION\s+)?TO\b/i.test(sql)) {
    batches.rows = 0;
  }
}

function install() {
  const probe = new Database(':memory:');
  const statementPrototype = Object.getPrototypeOf(probe.prepare('SELECT 1'));
  probe.close();
  for (const method of ['run', 'get', 'all', 'iterate']) {
    const original = statementPrototype[method];
    statementPrototype[method] = function (...params) {
      counts.statements++;
      if (batches !== undefined) track(this.source);
      return original.apply(this, params);
    };
  }
  const exec = Database.prototype.exec;
  Database.prototype.exec = function (sql) {
    counts.statements++;
    if (batches !== undefined) track(sql);
    return exec.call(this, sql);
  };
}
install();

/** Statements executed so far by every better-sqlite3 connection of this process. */
export const statementsExecuted = () => counts.statements;

/**
 * Records, until the returned function is called, the number of rows inserted by each committed
 * transaction (on any connection: open one database at a time). Returns the sizes in commit order.
 */
export function recordCommittedBatches() {
  batches = { rows: 0, sizes: [] };
  return () => {
    const { sizes } = batches;
    batches = undefined;
    return sizes;
  };
}
