#!/usr/bin/env node
// The benchmark suite: one-row insert jobs, side by side in one process, each run on a fresh WAL
// database file, for 1, 8 and 64 concurrent callers at synchronous=FULL and NORMAL. Contenders: the
// raw better-sqlite3 ceiling, unserialised TypeORM transactions, the baselines users hand-roll (a
// FIFO around dataSource.transaction(), async-mutex), and the coordinator (batch of 1, group commit,
// group commit with the raw fast path); a sweep of group commit settings; the queue mechanism alone
// (no-op jobs) against p-queue; resident memory over many jobs; the same-work limit of the raw fast
// path (a synchronous loop replaying the batches the coordinator formed). Per run: jobs/s, latency,
// process CPU time per job and SQL statements executed per job (bench/statement-counter.mjs).
// Medians over rounds. Not a test: it prints figures, it asserts nothing.
// Usage: npm run bench [-- --quick] [--json <file>] [--rounds N]
//        npm run bench -- --processes 4 [...]: several processes on one file instead (bench/processes.mjs)
//        npm run bench -- --multi-host [...]: several hosts on the LiteFS stand-in instead (bench/multi-host.mjs)
import { rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Mutex } from 'async-mutex';
import Database from 'better-sqlite3';
import PQueue from 'p-queue';
import library from '../dist/libs/write-coordinator/src/core/index.js';
import { freshFiles, openRows, rowSchema } from './rows.mjs';
import { silentObserver } from './silent-observer.mjs';
import { recordCommittedBatches, statementsExecuted } from './statement-counter.mjs';

const { Coordinator, WriteQueue } = library;

// --processes N: the several-processes benchmark (bench/processes.mjs, its own flags) instead of the suite.
const PROCESSES = process.argv.slice(2).some((a) => a === '--processes' || a.startsWith('--processes='));
// --multi-host: the several-hosts benchmark on the LiteFS stand-in (bench/multi-host.mjs, its own flags) instead.
const MULTI_HOST = process.argv.slice(2).includes('--multi-host');
const { values: args } = parseArgs({
  strict: !PROCESSES && !MULTI_HOST,
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    rounds: { type: 'string' },
  },
});
const QUICK = args.quick;
const ROUNDS = Number(args.rounds ?? (QUICK ? 1 : 3));
const JOBS = { FULL: QUICK ? 200 : 1_500, NORMAL: QUICK ? 600 : 5_000 };
const CALLERS = [1, 8, 64];
const SYNCS = ['FULL', 'NORMAL'];
const NOOP_JOBS = QUICK ? 50_000 : 200_000;
const MEMORY_JOBS = QUICK ? 20_000 : 200_000;

const Row = rowSchema();
const INSERT = 'INSERT INTO rows (v) VALUES (?)';
const { dir, next: freshFile } = freshFiles('wc-bench-suite-');

async function openDataSource(sync) {
  const ds = await openRows(freshFile());
  ds.driver.databaseConnection.pragma(`synchronous = ${sync}`);
  return ds;
}

async function openCoordinator(sync, options = {}) {
  const ds = await openDataSource(sync);
  // Metrics and events on, no listeners.
  const coordinator = new Coordinator({ synchronous: sync, queueSize: 1024, ...options }, { events: silentObserver });
  await coordinator.attach(ds);
  const close = async () => {
    await coordinator.close();
    await ds.destroy();
  };
  return { coordinator, ds, close };
}

const countRows = (ds) => ds.driver.databaseConnection.prepare('SELECT COUNT(*) AS n FROM rows').get().n;

/** A fresh WAL file on a bare better-sqlite3 connection, with the insert prepared. */
function openRaw(sync) {
  const db = new Database(freshFile());
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${sync}`);
  db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, v INTEGER)');
  return { db, insert: db.prepare(INSERT) };
}

/**
 * Each contender opens a fresh database and returns `job(i)` (one acknowledged row per resolved
 * call), `flush()` (for contenders that buffer), `rows()` and `close()`.
 */
const CONTENDERS = [
  {
    name: 'raw better-sqlite3, autocommit (ceiling)',
    async open(sync) {
      const { db, insert } = openRaw(sync);
      return {
        job: async (i) => void insert.run(i),
        rows: () => db.prepare('SELECT COUNT(*) AS n FROM rows').get().n,
        close: async () => db.close(),
      };
    },
  },
  {
    name: 'raw better-sqlite3, 100-row transactions (ceiling)',
    async open(sync) {
      const { db, insert } = openRaw(sync);
      const commit = db.transaction((batch) => batch.forEach((v) => insert.run(v)));
      let pending = [];
      let waiters = [];
      const flush = () => {
        commit(pending);
        const done = waiters;
        pending = [];
        waiters = [];
        done.forEach((resolve) => resolve());
      };
      return {
        job: (i) =>
          new Promise((resolve) => {
            pending.push(i);
            waiters.push(resolve);
            if (pending.length === 100) flush();
            else if (pending.length === 1) setImmediate(() => pending.length > 0 && flush());
          }),
        rows: () => db.prepare('SELECT COUNT(*) AS n FROM rows').get().n,
        close: async () => db.close(),
      };
    },
  },
  {
    name: 'TypeORM transactions, unserialised',
    async open(sync) {
      const ds = await openDataSource(sync);
      return {
        job: (i) => ds.transaction((m) => m.insert(Row, { v: i })),
        rows: () => countRows(ds),
        close: () => ds.destroy(),
      };
    },
  },
  {
    name: 'hand-rolled FIFO around dataSource.transaction()',
    async open(sync) {
      const ds = await openDataSource(sync);
      let tail = Promise.resolve();
      return {
        job: (i) => {
          const result = tail.then(() => ds.transaction((m) => m.insert(Row, { v: i })));
          tail = result.catch(() => undefined);
          return result;
        },
        rows: () => countRows(ds),
        close: () => ds.destroy(),
      };
    },
  },
  {
    name: 'async-mutex around dataSource.transaction()',
    async open(sync) {
      const ds = await openDataSource(sync);
      const mutex = new Mutex();
      return {
        job: (i) => mutex.runExclusive(() => ds.transaction((m) => m.insert(Row, { v: i }))),
        rows: () => countRows(ds),
        close: () => ds.destroy(),
      };
    },
  },
  {
    name: 'coordinator, batch of 1 (TypeORM insert)',
    async open(sync) {
      const { coordinator, ds, close } = await openCoordinator(sync, { maxBatchSize: 1 });
      return {
        job: (i) => coordinator.run((m) => m.insert(Row, { v: i })),
        rows: () => countRows(ds),
        close,
        batches: () => coordinator.metrics().batches,
      };
    },
  },
  {
    name: 'coordinator, group commit (TypeORM insert)',
    async open(sync) {
      const { coordinator, ds, close } = await openCoordinator(sync);
      return {
        job: (i) => coordinator.run((m) => m.insert(Row, { v: i })),
        rows: () => countRows(ds),
        close,
        batches: () => coordinator.metrics().batches,
      };
    },
  },
  {
    name: 'coordinator, group commit + raw fast path',
    // Its batches are replayed by the same-work limit below.
    replayBatches: true,
    async open(sync) {
      const { coordinator, ds, close } = await openCoordinator(sync);
      return {
        job: (i) => coordinator.run((_, job) => job.statement(INSERT).run(i)),
        rows: () => countRows(ds),
        close,
        batches: () => coordinator.metrics().batches,
      };
    },
  },
];

const LIMIT_NAME = "same-work limit (raw path's batches, savepoint/row)";

/**
 * The physical limit of the raw fast path's work (issue 11, item 5): a synchronous better-sqlite3
 * loop on a fresh WAL file that commits the same rows in the same transaction sizes the coordinator
 * formed (`sizes`, in commit order), each row in its own SAVEPOINT/RELEASE, every statement
 * prepared once. No promises, no queue: what the coordinator's batches would cost if it added
 * nothing.
 */
function sameWorkLimit(sync, sizes) {
  const { db, insert } = openRaw(sync);
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const savepoint = db.prepare('SAVEPOINT job');
  const release = db.prepare('RELEASE job');
  const statementsBefore = statementsExecuted();
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  let v = 0;
  for (const size of sizes) {
    begin.run();
    for (let k = 0; k < size; k++) {
      savepoint.run();
      insert.run(v++);
      release.run();
    }
    commit.run();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const statements = statementsExecuted() - statementsBefore;
  const committed = db.prepare('SELECT COUNT(*) AS n FROM rows').get().n;
  db.close();
  return {
    jobsPerSecond: v / seconds,
    p50Ms: undefined,
    p99Ms: undefined,
    errors: 0,
    acknowledged: v,
    committed,
    committedEqualsAcknowledged: committed === v,
    peakRssMb: process.memoryUsage().rss / 2 ** 20,
    cpuUsPerJob: (cpu.user + cpu.system) / v,
    statementsPerJob: statements / v,
    batches: { committed: sizes.length, jobs: v, meanSize: v / sizes.length },
  };
}

/**
 * The transaction sizes to replay: those the statement counter saw committed, when they add up to
 * the coordinator's own `metrics().batches`; else its mean size, rounded, repeated.
 */
function batchesToReplay(run) {
  const { batchSizes: seen, batches } = run;
  const total = seen.reduce((a, b) => a + b, 0);
  if (seen.length === batches.committed && total === batches.jobs) return { sizes: seen, source: 'replayed' };
  const mean = Math.max(1, Math.round(batches.meanSize));
  const sizes = Array.from({ length: Math.floor(batches.jobs / mean) }, () => mean);
  if (batches.jobs % mean > 0) sizes.push(batches.jobs % mean);
  return { sizes, source: 'mean' };
}

const median = (xs) => {
  const defined = xs.filter((x) => x !== undefined);
  return defined.length === 0 ? undefined : [...defined].sort((a, b) => a - b)[Math.floor(defined.length / 2)];
};
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Peak resident set size while `fn` runs, sampled every 10 ms, in MB. */
async function withPeakRss(fn) {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  try {
    const result = await fn();
    return { result, peakRssMb: Math.max(peak, process.memoryUsage().rss) / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

/** `jobs` jobs from `callers` concurrent callers, each awaiting its job before taking the next. */
async function runOnce(contender, sync, callers, jobs) {
  const target = await contender.open(sync);
  const statementsBefore = statementsExecuted();
  const stopRecording = contender.replayBatches ? recordCommittedBatches() : undefined;
  const latencies = [];
  let next = 0;
  let acknowledged = 0;
  let errors = 0;
  const caller = async () => {
    while (next < jobs) {
      const i = next++;
      const started = process.hrtime.bigint();
      try {
        await target.job(i);
        acknowledged++;
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      } catch {
        errors++;
      }
    }
  };
  const cpuBefore = process.cpuUsage();
  const { result: seconds, peakRssMb } = await withPeakRss(async () => {
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: callers }, caller));
    return Number(process.hrtime.bigint() - started) / 1e9;
  });
  const cpu = process.cpuUsage(cpuBefore);
  const statements = statementsExecuted() - statementsBefore;
  const batchSizes = stopRecording?.();
  const committed = target.rows();
  const batches = target.batches?.();
  await target.close();
  latencies.sort((a, b) => a - b);
  return {
    jobsPerSecond: acknowledged / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors,
    acknowledged,
    committed,
    committedEqualsAcknowledged: committed === acknowledged,
    peakRssMb,
    // Process CPU (user + system) while the jobs ran, divided by the acknowledged jobs.
    cpuUsPerJob: acknowledged === 0 ? undefined : (cpu.user + cpu.system) / acknowledged,
    statementsPerJob: acknowledged === 0 ? undefined : statements / acknowledged,
    batches,
    batchSizes,
  };
}

/** Group commit settings at 64 callers (TypeORM insert jobs): how batch size and waiting trade off. */
const SWEEP = QUICK
  ? [{ maxBatchSize: 1 }, { maxBatchSize: 16 }, { maxBatchSize: 64 }]
  : [
      { maxBatchSize: 1 },
      { maxBatchSize: 8 },
      { maxBatchSize: 16 },
      { maxBatchSize: 32 },
      { maxBatchSize: 64 },
      { maxBatchSize: 128 },
      { maxBatchSize: 64, batchWaitMs: 1 },
    ];

async function sweep(sync) {
  const rows = [];
  for (const settings of SWEEP) {
    const contender = {
      async open(s) {
        const { coordinator, ds, close } = await openCoordinator(s, settings);
        return {
          job: (i) => coordinator.run((m) => m.insert(Row, { v: i })),
          rows: () => countRows(ds),
          close,
          batches: () => coordinator.metrics().batches,
        };
      },
    };
    const rounds = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push(await runOnce(contender, sync, 64, JOBS[sync]));
    rows.push({
      sync,
      ...settings,
      jobsPerSecond: median(rounds.map((x) => x.jobsPerSecond)),
      p50Ms: median(rounds.map((x) => x.p50Ms)),
      p99Ms: median(rounds.map((x) => x.p99Ms)),
      meanBatch: median(rounds.map((x) => x.batches?.meanSize ?? 1)),
      cpuUsPerJob: median(rounds.map((x) => x.cpuUsPerJob)),
      statementsPerJob: median(rounds.map((x) => x.statementsPerJob)),
    });
    process.stderr.write(
      `sweep ${sync} ${JSON.stringify(settings)} ${fmt(rows[rows.length - 1].jobsPerSecond)} jobs/s\n`,
    );
  }
  return rows;
}

/** Per-job cost of the queue mechanism alone: no-op jobs, 64 callers awaiting each. */
async function noopCost() {
  const contenders = {
    'p-queue (concurrency 1)': () => {
      const q = new PQueue({ concurrency: 1 });
      return () => q.add(() => undefined);
    },
    'coordinator queue (metrics + events, no listeners)': () => {
      const q = new WriteQueue({ capacity: NOOP_JOBS, whenFull: 'wait', timeoutMs: undefined }, silentObserver);
      return () => q.enqueue(() => undefined);
    },
  };
  const out = {};
  for (const [name, make] of Object.entries(contenders)) {
    const times = [];
    for (let r = 0; r < Math.max(ROUNDS, 3); r++) {
      const submit = make();
      let left = NOOP_JOBS;
      const started = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (left-- > 0) await submit();
        }),
      );
      times.push(Number(process.hrtime.bigint() - started) / NOOP_JOBS);
    }
    out[name] = median(times);
  }
  return out;
}

/** Resident memory before and after many coordinator jobs (raw fast path, NORMAL), after GC. */
async function memoryGrowth() {
  const { coordinator, close } = await openCoordinator('NORMAL');
  const gc = globalThis.gc ?? (() => undefined);
  const warm = 2_000;
  for (let i = 0; i < warm; i++) await coordinator.run((_, job) => job.statement(INSERT).run(i));
  gc();
  const before = process.memoryUsage().rss;
  let left = MEMORY_JOBS;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (left-- > 0) await coordinator.run((_, job) => job.statement(INSERT).run(left));
    }),
  );
  gc();
  const after = process.memoryUsage().rss;
  await close();
  return {
    jobs: MEMORY_JOBS,
    rssBeforeMb: before / 2 ** 20,
    rssAfterMb: after / 2 ** 20,
    growthMb: (after - before) / 2 ** 20,
    gc: Boolean(globalThis.gc),
  };
}

const fmt = (n, digits = 0) => (n === undefined ? '—' : n.toFixed(digits));

async function main() {
  const total = SYNCS.length * CALLERS.length * (CONTENDERS.length + 1) * ROUNDS;
  let done = 0;
  const results = [];
  const started = Date.now();
  console.log(
    `write-coordinator benchmark${QUICK ? ' (--quick)' : ''}: ${ROUNDS} round(s), median; jobs per run FULL ${JOBS.FULL}, NORMAL ${JOBS.NORMAL}; ` +
      `node ${process.version}, ${cpus().length} cores`,
  );
  for (const sync of SYNCS) {
    for (const callers of CALLERS) {
      const progress = (name, last) => {
        done++;
        process.stderr.write(
          `[${String(done).padStart(3)}/${total}] ${sync.padEnd(6)} ${String(callers).padStart(2)} callers  ` +
            `${name.padEnd(52)} ${fmt(last.jobsPerSecond).padStart(7)} jobs/s  (${Math.round((Date.now() - started) / 1000)} s)\n`,
        );
      };
      const summarise = (name, rounds, extra = {}) =>
        results.push({
          sync,
          callers,
          contender: name,
          jobsPerSecond: median(rounds.map((x) => x.jobsPerSecond)),
          p50Ms: median(rounds.map((x) => x.p50Ms)),
          p99Ms: median(rounds.map((x) => x.p99Ms)),
          errors: median(rounds.map((x) => x.errors)),
          errorRate: median(rounds.map((x) => x.errors / (x.errors + x.acknowledged))),
          committedEqualsAcknowledged: rounds.every((x) => x.committedEqualsAcknowledged),
          peakRssMb: Math.max(...rounds.map((x) => x.peakRssMb)),
          cpuUsPerJob: median(rounds.map((x) => x.cpuUsPerJob)),
          statementsPerJob: median(rounds.map((x) => x.statementsPerJob)),
          meanBatch: median(rounds.map((x) => x.batches?.meanSize)),
          ...extra,
          // The replayed sizes are summarised by `batches`; the arrays would swamp the JSON.
          rounds: rounds.map(({ batchSizes: _, ...round }) => round),
        });
      for (const contender of CONTENDERS) {
        const rounds = [];
        const limitRounds = [];
        const replaySources = [];
        for (let r = 0; r < ROUNDS; r++) {
          const run = await runOnce(contender, sync, callers, JOBS[sync]);
          rounds.push(run);
          progress(contender.name, run);
          if (contender.replayBatches) {
            const { sizes, source } = batchesToReplay(run);
            replaySources.push(source);
            limitRounds.push(sameWorkLimit(sync, sizes));
            progress(LIMIT_NAME, limitRounds[limitRounds.length - 1]);
          }
        }
        summarise(contender.name, rounds);
        if (contender.replayBatches) summarise(LIMIT_NAME, limitRounds, { replaySources });
      }
    }
  }
  const sweeps = [];
  for (const sync of SYNCS) sweeps.push(...(await sweep(sync)));
  process.stderr.write('no-op jobs: queue mechanism vs p-queue…\n');
  const noop = await noopCost();
  process.stderr.write(`memory: ${MEMORY_JOBS} coordinator jobs…\n`);
  const memory = await memoryGrowth();

  const find = (sync, callers, prefix) =>
    results.find((r) => r.sync === sync && r.callers === callers && r.contender.startsWith(prefix));
  const ratios = [];
  for (const sync of SYNCS) {
    console.log(`\nsynchronous=${sync}, one-row insert jobs`);
    console.table(
      results
        .filter((r) => r.sync === sync)
        .map((r) => ({
          callers: r.callers,
          contender: r.contender,
          'jobs/s': fmt(r.jobsPerSecond),
          'p50 ms': fmt(r.p50Ms, 2),
          'p99 ms': fmt(r.p99Ms, 2),
          'CPU µs/job': fmt(r.cpuUsPerJob, 1),
          'stmts/job': fmt(r.statementsPerJob, 2),
          'mean batch': fmt(r.meanBatch, 1),
          errors: `${fmt(r.errorRate * 100, 1)}%`,
          'committed == acked': r.committedEqualsAcknowledged ? 'yes' : 'NO',
          'peak RSS MB': fmt(r.peakRssMb),
        })),
    );
    const limits = results.filter((r) => r.sync === sync && r.replaySources);
    const replayed = limits.flatMap((r) => r.replaySources).filter((x) => x === 'replayed').length;
    console.log(
      `CPU µs/job: process.cpuUsage() (user + system) over the run / acknowledged jobs, the harness and GC included. ` +
        `stmts/job: SQL statements executed / acknowledged jobs (bench/statement-counter.mjs). ` +
        `The same-work limit replayed the raw fast path's own transaction sizes in ${replayed} of ` +
        `${limits.flatMap((r) => r.replaySources).length} runs (else their mean size, rounded).`,
    );
    for (const callers of CALLERS) {
      const jobsPerSecond = (prefix) => find(sync, callers, prefix).jobsPerSecond;
      const cpu = (prefix) => find(sync, callers, prefix).cpuUsPerJob;
      const fifo = jobsPerSecond('hand-rolled FIFO');
      const ratio = (name, value) => ratios.push({ sync, callers, ratio: name, value });
      ratio('coordinator batch 1 / hand-rolled FIFO', jobsPerSecond('coordinator, batch of 1') / fifo);
      ratio('group commit / hand-rolled FIFO', jobsPerSecond('coordinator, group commit (TypeORM') / fifo);
      ratio('group commit + raw / hand-rolled FIFO', jobsPerSecond('coordinator, group commit + raw') / fifo);
      ratio(
        'group commit + raw / raw 100-row ceiling',
        jobsPerSecond('coordinator, group commit + raw') / jobsPerSecond('raw better-sqlite3, 100-row'),
      );
      ratio(
        'group commit + raw / same-work limit',
        jobsPerSecond('coordinator, group commit + raw') / jobsPerSecond('same-work limit'),
      );
      ratio(
        'CPU per job: group commit / hand-rolled FIFO',
        cpu('coordinator, group commit (TypeORM') / cpu('hand-rolled FIFO'),
      );
      // At one caller, unserialised TypeORM is the plain loop (`await dataSource.transaction()`);
      // with more it fails almost every job, so its CPU per job means nothing there.
      if (callers === 1) {
        ratio(
          'CPU per job: group commit / plain loop (unserialised TypeORM)',
          cpu('coordinator, group commit (TypeORM') / cpu('TypeORM transactions, unserialised'),
        );
      }
    }
  }
  console.log('\ngroup commit settings, 64 callers, TypeORM insert jobs');
  console.table(
    sweeps.map((r) => ({
      sync: r.sync,
      maxBatchSize: r.maxBatchSize,
      batchWaitMs: r.batchWaitMs ?? 0,
      'jobs/s': fmt(r.jobsPerSecond),
      'p50 ms': fmt(r.p50Ms, 2),
      'p99 ms': fmt(r.p99Ms, 2),
      'mean batch': fmt(r.meanBatch, 1),
      'CPU µs/job': fmt(r.cpuUsPerJob, 1),
      'stmts/job': fmt(r.statementsPerJob, 2),
    })),
  );
  console.log('\nratios (jobs/s over jobs/s, unless CPU per job)');
  console.table(ratios.map((r) => ({ ...r, value: fmt(r.value, 2) })));
  const [pq, ours] = Object.values(noop);
  console.log(
    `\nno-op job, 64 callers (${NOOP_JOBS} jobs): p-queue ${fmt(pq)} ns/job, coordinator queue ${fmt(ours)} ns/job, ` +
      `p-queue / coordinator = ${fmt(pq / ours, 2)}`,
  );
  console.log(
    `memory: ${memory.jobs} coordinator jobs (raw fast path, NORMAL, 64 callers): RSS ${fmt(memory.rssBeforeMb)} → ${fmt(memory.rssAfterMb)} MB ` +
      `(growth ${fmt(memory.growthMb, 1)} MB${memory.gc ? ', after GC' : ', no --expose-gc'})`,
  );
  if (args.json) {
    writeFileSync(
      args.json,
      JSON.stringify(
        {
          quick: QUICK,
          rounds: ROUNDS,
          jobs: JOBS,
          node: process.version,
          cores: cpus().length,
          results,
          sweeps,
          ratios,
          noopNsPerJob: noop,
          memory,
        },
        null,
        2,
      ),
    );
    console.log(`figures written to ${args.json}`);
  }
}

try {
  if (MULTI_HOST) await import('./multi-host.mjs');
  else if (PROCESSES) await import('./processes.mjs');
  else await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
