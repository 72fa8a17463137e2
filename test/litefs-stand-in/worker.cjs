// An application process of one stand-in node, for the stand-in's own tests: opens the node's
// database with better-sqlite3 (the agent is preloaded through the node's NODE_OPTIONS) and runs the
// commands the test sends over IPC, answering { id, value } or { id, error: { code, message } }.
// Every answer that follows a write carries `pos`: the node's `-pos`, read right after it returned.
'use strict';
const fs = require('node:fs');
const Database = require('better-sqlite3');

const { database, journalMode, posPath } = JSON.parse(process.env.STAND_IN_WORKER);
const db = new Database(database, { timeout: 5000 });
db.pragma(`journal_mode = ${journalMode}`);

const pos = () => fs.readFileSync(posPath, 'utf8');
const { setTimeout: sleep } = require('node:timers/promises');

const commands = {
  run({ sql, params = [] }) {
    const info = db.prepare(sql).run(...params);
    return { changes: info.changes, pos: pos() };
  },
  all({ sql, params = [] }) {
    return db.prepare(sql).all(...params);
  },
  exec({ sql }) {
    db.exec(sql);
    return { pos: pos() };
  },
  /** `count` autocommit inserts into `items`, back to back. */
  inserts({ count, prefix }) {
    const insert = db.prepare('INSERT INTO items (name) VALUES (?)');
    for (let i = 0; i < count; i++) insert.run(`${prefix} ${i}`);
    return { pos: pos() };
  },
  /** The statements in one `BEGIN IMMEDIATE` transaction (better-sqlite3's `transaction().immediate`). */
  transaction({ statements }) {
    db.transaction(() => {
      for (const { sql, params = [] } of statements) db.prepare(sql).run(...params);
    }).immediate();
    return { pos: pos() };
  },
  /** `count` transfers between random accounts, each its own transaction, 1 ms apart. */
  async transfers({ count, accounts }) {
    const debit = db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ?');
    const credit = db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
    const version = db.prepare('UPDATE meta SET version = version + 1');
    const transfer = db.transaction((from, to, amount) => {
      debit.run(amount, from);
      credit.run(amount, to);
      version.run();
    });
    for (let i = 0; i < count; i++) {
      transfer.immediate(1 + (i % accounts), 1 + ((i * 7 + 3) % accounts), 1 + (i % 13));
      await sleep(1);
    }
    return { pos: pos() };
  },
  /**
   * Reads for `durationMs`: `-pos`, then a transaction of two statements, the sum of the balances
   * and the version. Reports reads, reads whose sum was not `expectedSum`, reads whose version was
   * older than `-pos` claimed (one transfer per TXID after `baseTxID`), errors, and versions seen.
   */
  sumLoop({ durationMs, expectedSum, baseTxID }) {
    const begin = db.prepare('BEGIN');
    const sum = db.prepare('SELECT sum(balance) AS total FROM accounts').pluck();
    const version = db.prepare('SELECT version FROM meta').pluck();
    const commit = db.prepare('COMMIT');
    const versions = new Set();
    const errors = [];
    let reads = 0;
    let violations = 0;
    let behindPos = 0;
    const end = Date.now() + durationMs;
    while (Date.now() < end) {
      try {
        const claimed = Number.parseInt(pos().slice(0, 16), 16) - baseTxID;
        begin.run();
        if (sum.get() !== expectedSum) violations++;
        const seen = version.get();
        if (seen < claimed) behindPos++;
        versions.add(seen);
        commit.run();
      } catch (error) {
        errors.push(`${error.code}: ${error.message}`);
        if (db.inTransaction) db.exec('ROLLBACK');
      }
      reads++;
    }
    return {
      reads,
      violations,
      behindPos,
      errors: errors.slice(0, 5),
      errorCount: errors.length,
      versions: versions.size,
    };
  },
};

process.on('message', (message) => {
  const { id, op, args } = message;
  Promise.resolve()
    .then(() => commands[op](args ?? {}))
    .then(
      (value) => process.send({ id, value }),
      (error) => process.send({ id, error: { code: error.code, message: error.message } }),
    );
});
process.on('disconnect', () => {
  db.close();
  process.exit(0);
});
process.send({ ready: true });
