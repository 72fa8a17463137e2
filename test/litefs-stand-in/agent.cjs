// TEST DOUBLE, not LiteFS. The node side of the LiteFS stand-in (see README.md here): preloaded into
// an app process with `node --require <this file>` and `LITEFS_STAND_IN_MOUNT=<the node's mount dir>`,
// it patches better-sqlite3 for the databases whose file lies in that mount, and does there what the
// LiteFS FUSE layer does to an application:
// - while the node is not the primary (the `.stand-in-role` file the controller writes says so), a
//   statement that would write the database, or a COMMIT of a transaction that wrote, fails inside
//   better-sqlite3 with LiteFS's errors: SQLITE_IOERR "disk I/O error" in WAL mode,
//   SQLITE_READONLY "attempt to write a readonly database" in rollback-journal mode;
// - on the primary, every committed write transaction advances `<db>-pos` by one TXID, written while
//   the transaction still holds SQLite's write lock (just before COMMIT; put back if COMMIT fails), so
//   a read of `-pos` after the commit returned includes it, and the controller, which takes the
//   same lock before reading `-pos`, never sees a TXID whose data is not committed. One line per
//   transaction is appended to `.stand-in-txlog` after the commit (the controller's `tx` events).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const Database = require('better-sqlite3');

const ROLE_FILE = '.stand-in-role';
const TX_LOG = '.stand-in-txlog';
const POS = /^([0-9a-f]{16})\/([0-9a-f]{16})\n?$/;
const FIRST_WORDS = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*([A-Za-z]+)(?:\s+([A-Za-z]+))?/;
/** Writes LiteFS lets through on a replica: they go to the connection's TEMP database, not the mount. */
const TEMP_WRITE =
  /^\s*(?:CREATE\s+(?:TEMP|TEMPORARY)\b|(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE\s+(?:OR\s+\w+\s+)?|DELETE\s+FROM|DROP\s+\w+\s+(?:IF\s+EXISTS\s+)?)\s*["`[]?temp["`\]]?\s*\.)/i;

const mountEnv = process.env.LITEFS_STAND_IN_MOUNT;
if (mountEnv) install(fs.realpathSync(mountEnv));

function install(mount) {
  const probe = new Database(':memory:');
  const StatementPrototype = Object.getPrototypeOf(probe.prepare('SELECT 1'));
  probe.close();
  const native = {
    run: StatementPrototype.run,
    get: StatementPrototype.get,
    all: StatementPrototype.all,
    iterate: StatementPrototype.iterate,
  };
  /** Database -> its bookkeeping, or null when its file is not in the mount. */
  const states = new WeakMap();
  /** Statement -> what it does (see kindOf). */
  const kinds = new WeakMap();

  function stateOf(db) {
    let state = states.get(db);
    if (state !== undefined) return state;
    state = null;
    if (!db.memory && db.name && !db.name.startsWith('file:')) {
      const file = path.resolve(db.name);
      let dir;
      try {
        dir = fs.realpathSync(path.dirname(file));
      } catch {
        dir = undefined;
      }
      if (dir === mount) {
        state = {
          posPath: path.join(mount, `${path.basename(file)}-pos`),
          /** The open transaction wrote to the mounted database. */
          dirty: false,
          /** Savepoint names, oldest first, when a SAVEPOINT opened the transaction. */
          savepoints: undefined,
          statements: new Map(),
        };
      }
    }
    states.set(db, state);
    return state;
  }

  /** A statement of the agent's own, run with the unpatched methods. */
  function own(db, state, sql) {
    let stmt = state.statements.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      kinds.set(stmt, 'own');
      state.statements.set(sql, stmt);
    }
    return stmt;
  }
  const ownValue = (db, state, sql) => {
    const row = native.get.call(own(db, state, sql));
    return row === undefined ? undefined : Object.values(row)[0];
  };

  function kindOf(stmt) {
    let kind = kinds.get(stmt);
    if (kind !== undefined) return kind;
    const match = FIRST_WORDS.exec(stmt.source);
    const first = match ? match[1].toUpperCase() : '';
    const second = match && match[2] ? match[2].toUpperCase() : '';
    if (first === 'BEGIN') kind = second === 'IMMEDIATE' || second === 'EXCLUSIVE' ? 'begin-write' : 'begin';
    else if (first === 'COMMIT' || first === 'END') kind = 'commit';
    else if (first === 'ROLLBACK')
      kind = second === 'TO' || /^\s*ROLLBACK\s+TRANSACTION\s+TO\b/i.test(stmt.source) ? 'read' : 'rollback';
    else if (first === 'SAVEPOINT') kind = 'savepoint';
    else if (first === 'RELEASE') kind = 'release';
    else if (first === 'PRAGMA' || stmt.readonly || TEMP_WRITE.test(stmt.source)) kind = 'read';
    else if (['INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'WITH'].includes(first)) kind = 'dml';
    else kind = 'ddl';
    kinds.set(stmt, kind);
    return kind;
  }

  const isPrimary = () => {
    try {
      return fs.readFileSync(path.join(mount, ROLE_FILE), 'utf8').trim() === 'primary';
    } catch {
      return false;
    }
  };

  function refusal(db, state) {
    const mode = String(ownValue(db, state, 'PRAGMA journal_mode')).toLowerCase();
    return mode === 'wal'
      ? new Database.SqliteError('disk I/O error', 'SQLITE_IOERR')
      : new Database.SqliteError('attempt to write a readonly database', 'SQLITE_READONLY');
  }

  /** The savepoint name a SAVEPOINT or RELEASE statement names, unquoted and upper-cased. */
  function savepointName(source) {
    const rest = source
      .trim()
      .replace(/;\s*$/, '')
      .replace(/^(SAVEPOINT|RELEASE(\s+SAVEPOINT)?)\s+/i, '')
      .trim();
    const quoted = /^(["`[])([\s\S]*)["`\]]$/.exec(rest);
    return (quoted ? quoted[2] : rest).toUpperCase();
  }

  /** Advances `-pos` by one TXID; returns what to put back and what to log. */
  function advancePosition(state) {
    const before = fs.readFileSync(state.posPath, 'utf8');
    const match = POS.exec(before);
    if (!match)
      throw new Database.SqliteError(`litefs stand-in: malformed ${state.posPath}: ${before}`, 'SQLITE_IOERR');
    const txID = (BigInt(`0x${match[1]}`) + 1n).toString(16).padStart(16, '0');
    // Not LiteFS's CRC64 of the pages: a hash of the previous checksum, the TXID and random bytes, so
    // that two histories that part ways (a failover without catch-up) differ at the same TXID.
    const checksum = crypto
      .createHash('sha256')
      .update(`${match[2]}/${txID}/${crypto.randomBytes(8).toString('hex')}`)
      .digest('hex')
      .slice(0, 16);
    const after = `${txID}/${checksum}\n`;
    const temp = path.join(path.dirname(state.posPath), `.stand-in-pos.${process.pid}.tmp`);
    fs.writeFileSync(temp, after);
    fs.renameSync(temp, state.posPath);
    return { before, after, txID, checksum };
  }

  /** Runs the COMMIT (or outermost RELEASE) `stmt` of a transaction that wrote. */
  function commitWrites(db, state, stmt, method, args) {
    if (!isPrimary()) {
      const error = refusal(db, state);
      native.run.call(own(db, state, 'ROLLBACK'));
      state.dirty = false;
      state.savepoints = undefined;
      throw error;
    }
    const position = advancePosition(state);
    let result;
    try {
      result = native[method].apply(stmt, args);
    } catch (error) {
      try {
        if (fs.readFileSync(state.posPath, 'utf8') === position.after) fs.writeFileSync(state.posPath, position.before);
      } finally {
        if (!db.inTransaction) state.dirty = false;
      }
      throw error;
    }
    state.dirty = false;
    state.savepoints = undefined;
    const line = {
      txID: position.txID,
      postApplyChecksum: position.checksum,
      pageSize: Number(ownValue(db, state, 'PRAGMA page_size')),
      commit: Number(ownValue(db, state, 'PRAGMA page_count')),
      timestamp: new Date().toISOString(),
    };
    fs.appendFileSync(path.join(mount, TX_LOG), `${JSON.stringify(line)}\n`);
    return result;
  }

  /** Runs a write statement; outside a transaction, inside one of its own, so its TXID is set under the lock. */
  function write(db, state, stmt, kind, method, args) {
    if (!isPrimary()) throw refusal(db, state);
    const autocommit = !db.inTransaction;
    if (autocommit) native.run.call(own(db, state, 'BEGIN IMMEDIATE'));
    try {
      if (method === 'iterate' && !autocommit) {
        // The connection is busy until the caller has read every row: no count of changes now.
        state.dirty = true;
        return native.iterate.apply(stmt, args);
      }
      const before = kind === 'dml' ? ownValue(db, state, 'SELECT total_changes()') : undefined;
      let result = native[method].apply(stmt, args);
      if (method === 'iterate') result = Array.from(result)[Symbol.iterator]();
      if (kind === 'ddl' || ownValue(db, state, 'SELECT total_changes()') !== before) state.dirty = true;
      if (autocommit) {
        if (state.dirty) commitWrites(db, state, own(db, state, 'COMMIT'), 'run', []);
        else native.run.call(own(db, state, 'COMMIT'));
      }
      return result;
    } catch (error) {
      if (autocommit && db.inTransaction) native.run.call(own(db, state, 'ROLLBACK'));
      if (!db.inTransaction) state.dirty = false;
      throw error;
    }
  }

  function execute(stmt, method, args) {
    const db = stmt.database;
    const state = stateOf(db);
    const kind = state ? kindOf(stmt) : 'own';
    if (kind === 'own' || kind === 'read' || kind === 'begin') return native[method].apply(stmt, args);
    // A write transaction's lock is LiteFS's to grant: a replica never gets it.
    if (kind === 'begin-write') {
      if (!isPrimary()) throw refusal(db, state);
      return native[method].apply(stmt, args);
    }
    if (kind === 'dml' || kind === 'ddl') return write(db, state, stmt, kind, method, args);
    const opening = !db.inTransaction;
    if (kind === 'savepoint') {
      const result = native[method].apply(stmt, args);
      if (opening) state.savepoints = [savepointName(stmt.source)];
      else if (state.savepoints) state.savepoints.push(savepointName(stmt.source));
      return result;
    }
    const commits =
      kind === 'commit' ||
      (kind === 'release' && state.savepoints !== undefined && state.savepoints[0] === savepointName(stmt.source));
    if (commits && state.dirty && db.inTransaction) return commitWrites(db, state, stmt, method, args);
    try {
      const result = native[method].apply(stmt, args);
      if (kind === 'release' && state.savepoints) {
        const index = state.savepoints.lastIndexOf(savepointName(stmt.source));
        if (index >= 0) state.savepoints.length = index;
      }
      return result;
    } finally {
      if (!db.inTransaction) {
        state.dirty = false;
        state.savepoints = undefined;
      }
    }
  }

  for (const method of Object.keys(native)) {
    StatementPrototype[method] = function (...args) {
      return execute(this, method, args);
    };
  }

  const nativeExec = Database.prototype.exec;
  Database.prototype.exec = function exec(sql) {
    if (!stateOf(this) || typeof sql !== 'string') return nativeExec.call(this, sql);
    for (const statement of splitStatements(sql)) this.prepare(statement).run();
    return this;
  };
}

/**
 * Splits a script into its statements (so `exec` goes through the statement checks), minding quotes,
 * comments and the BEGIN ... END body of CREATE TRIGGER.
 */
function splitStatements(sql) {
  const statements = [];
  let start = 0;
  let words = [];
  let trigger = false;
  let depth = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      while (j < sql.length && !(sql[j] === close && sql[j + 1] !== close)) j += sql[j] === close ? 2 : 1;
      i = j + 1;
      words.push('?');
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < sql.length && /[A-Za-z0-9_$]/.test(sql[j])) j++;
      const word = sql.slice(i, j).toUpperCase();
      words.push(word);
      if (word === 'TRIGGER' && words[0] === 'CREATE' && words.length <= 3) trigger = true;
      if (trigger && (word === 'BEGIN' || word === 'CASE')) depth++;
      if (trigger && word === 'END') depth--;
      i = j;
    } else if (c === ';' && depth <= 0) {
      if (words.length > 0) statements.push(sql.slice(start, i));
      start = i + 1;
      words = [];
      trigger = false;
      depth = 0;
      i++;
    } else {
      if (!/\s/.test(c)) words.push(c);
      i++;
    }
  }
  if (words.length > 0) statements.push(sql.slice(start));
  return statements;
}
