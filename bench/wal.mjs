#!/usr/bin/env node
// The WAL under sustained writes with readers in other connections, side by side in one run on
// fresh WAL files: one-row insert jobs from 64 callers through the coordinator while 4 worker
// threads (each with its own connection, as other processes would have) loop `SELECT count(*)`.
//   - "policy": the coordinator's checkpoints (walCheckpoint: { maxWalBytes: --max-wal-bytes });
//   - "SQLite": walCheckpoint: false, checkpoints left to SQLite's wal_autocheckpoint.
// The -wal file is sampled after every COMMIT of the writing connection (better-sqlite3's
// `verbose` hook: the statement after a COMMIT triggers a stat), the same way for both.
// Usage: npm run bench:wal [-- --jobs 1000000 --max-wal-bytes 16777216 --synchronous FULL --rounds 1]
import { rmSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { URL } from 'node:url';
import { Worker } from 'node:worker_threads';
import library from '../dist/libs/write-coordinator/src/core/index.js';
import { freshFiles, integerFlag, openRows, rowSchema } from './rows.mjs';

const { Coordinator } = library;
const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000000' },
    callers: { type: 'string', default: '64' },
    readers: { type: 'string', default: '4' },
    'max-wal-bytes': { type: 'string', default: String(16 * 1024 * 1024) },
    synchronous: { type: 'string', default: 'FULL' },
    rounds: { type: 'string', default: '1' },
  },
});
const JOBS = integerFlag('jobs', values.jobs);
const CALLERS = integerFlag('callers', values.callers);
const READERS = integerFlag('readers', values.readers, 0);
const LIMIT = integerFlag('max-wal-bytes', values['max-wal-bytes']);
const SYNCHRONOUS = values.synchronous;
const ROUNDS = integerFlag('rounds', values.rounds);

const Row = rowSchema();
const { dir, next: freshFile } = freshFiles('wc-bench-wal-');
const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);

/** Starts the reader threads on `database`; `stop()` resolves with their total reads. */
function startReaders(database) {
  const stop = new SharedArrayBuffer(4);
  const workers = Array.from(
    { length: READERS },
    () => new Worker(new URL('./wal-reader.mjs', import.meta.url), { workerData: { database, stop } }),
  );
  const done = workers.map((worker) => new Promise((resolve) => worker.once('message', ({ reads }) => resolve(reads))));
  return {
    async stop() {
      Atomics.store(new Int32Array(stop), 0, 1);
      const reads = await Promise.all(done);
      return reads.reduce((a, b) => a + b, 0);
    },
  };
}

/** One run: fresh file, readers, CALLERS callers sending JOBS one-row jobs in total. */
async function run(name, walCheckpoint) {
  const database = freshFile();
  let afterCommit = false;
  let peak = 0;
  let commits = 0;
  const sample = () => {
    const bytes = statSync(`${database}-wal`, { throwIfNoEntry: false })?.size ?? 0;
    if (bytes > peak) peak = bytes;
  };
  const ds = await openRows(database, {
    verbose: (sql) => {
      if (afterCommit) sample();
      afterCommit = sql === 'COMMIT';
      if (afterCommit) commits++;
    },
  });
  const coordinator = new Coordinator({ synchronous: SYNCHRONOUS, walCheckpoint });
  await coordinator.attach(ds);
  const readers = startReaders(database);
  let sent = 0;
  let done = 0;
  const step = Math.max(1, Math.floor(JOBS / 20));
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (sent < JOBS) {
        const v = sent++;
        await coordinator.run((m) => m.insert(Row, { v }));
        if (++done % step === 0) {
          process.stderr.write(
            `  ${name}: ${done}/${JOBS} jobs, -wal ${mib(peak)} MiB peak, ` +
              `${Math.round(done / ((performance.now() - startedAt) / 1000))} jobs/s\n`,
          );
        }
      }
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  sample();
  const reads = await readers.stop();
  const { wal, batches } = coordinator.metrics();
  await coordinator.close();
  await ds.destroy();
  return { name, seconds, jobsPerSecond: JOBS / seconds, peak, commits, reads, wal, meanBatch: batches.meanSize };
}

process.stderr.write(
  `bench:wal — ${JOBS} one-row jobs, ${CALLERS} callers, ${READERS} reader threads looping SELECT count(*), ` +
    `synchronous=${SYNCHRONOUS}, maxWalBytes ${LIMIT} (${mib(LIMIT)} MiB), ${ROUNDS} round(s)\n`,
);
const results = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order, so that neither side always runs first on a machine warming up.
    const order = round % 2 === 0 ? ['policy', 'SQLite'] : ['SQLite', 'policy'];
    for (const side of order) {
      process.stderr.write(`round ${round + 1}, ${side}\n`);
      results.push(await run(side, side === 'policy' ? { maxWalBytes: LIMIT } : false));
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
console.log(
  `\n| checkpoints | jobs/s | peak -wal (MiB) | peak / limit | commits | mean batch | reads/s (4 readers) | truncations | busy retries | gave up | ms in checkpoints (max) |`,
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.name === 'policy' ? `policy (maxWalBytes ${mib(LIMIT)} MiB)` : 'left to SQLite'} | ${Math.round(r.jobsPerSecond)} | ` +
      `${mib(r.peak)} | ${(r.peak / LIMIT).toFixed(2)} | ${r.commits} | ${r.meanBatch.toFixed(1)} | ` +
      `${Math.round(r.reads / r.seconds)} | ${r.wal.truncations} | ${r.wal.busy} | ${r.wal.gaveUp} | ` +
      `${Math.round(r.wal.checkpointMs.total)} (${r.wal.checkpointMs.max.toFixed(1)}) |`,
  );
}
const policy = median(results.filter((r) => r.name === 'policy').map((r) => r.jobsPerSecond));
const sqlite = median(results.filter((r) => r.name === 'SQLite').map((r) => r.jobsPerSecond));
const policyPeak = Math.max(...results.filter((r) => r.name === 'policy').map((r) => r.peak));
console.log(
  `\npolicy / SQLite jobs/s: ${(policy / sqlite).toFixed(3)} (median of ${ROUNDS}); ` +
    `policy peak -wal ${mib(policyPeak)} MiB against a limit of ${mib(LIMIT)} MiB ` +
    `(${policyPeak <= LIMIT ? 'within' : `over by ${((policyPeak - LIMIT) / 1024).toFixed(0)} KiB`})`,
);
