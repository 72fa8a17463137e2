// Worker thread of bench/wal.mjs: a reader of "another process" with its own better-sqlite3
// connection, looping `SELECT count(*)` (each one its own read transaction) until told to stop.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database(workerData.database, { readonly: true });
db.pragma('busy_timeout = 10');
const count = db.prepare('SELECT count(*) AS n FROM rows');
const stop = new Int32Array(workerData.stop);
let reads = 0;
while (Atomics.load(stop, 0) === 0) {
  count.get();
  reads++;
}
db.close();
parentPort.postMessage({ reads });
