#!/usr/bin/env node
// The lone caller's tax: one caller (or a few) awaiting one-row TypeORM insert jobs, through the
// coordinator (batchYield 'auto', the default, and 'never') against the plain loop (with more
// than one caller, a hand-rolled FIFO around it: unserialised transactions collide on TypeORM's one
// connection)
// (`await dataSource.transaction()`, unserialised). Contenders interleave within every round, each
// on a fresh WAL file; medians of jobs/s and of process CPU time per job (`process.cpuUsage()`,
// far less noisy than wall time on a shared machine). Not a test: it prints figures.
// Usage: npm run bench:lone [-- --rounds 5] [--callers 1] [--sync FULL,NORMAL] [--root <repo>]
//   --root: the repository whose build (dist/) to measure, e.g. a worktree of an older commit
//   (`git worktree add /tmp/old <commit> && cd /tmp/old && ln -s $PWD/node_modules . && npx nest build`).
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { freshFiles, integerFlag, openRows } from './rows.mjs';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    callers: { type: 'string', default: '1' },
    sync: { type: 'string', default: 'FULL,NORMAL' },
    root: { type: 'string', default: '.' },
  },
});
const rounds = integerFlag('rounds', args.rounds);
const callers = integerFlag('callers', args.callers);
const levels = args.sync.split(',');
for (const level of levels) {
  if (!['OFF', 'NORMAL', 'FULL'].includes(level))
    throw new Error(`--sync takes OFF, NORMAL or FULL (received '${level}')`);
}

const root = resolve(args.root);
const require = createRequire(join(root, 'package.json'));
const typeorm = require('typeorm');
const { Coordinator, WRITE_COORDINATOR_DEFAULTS } = require(
  join(root, 'dist/libs/write-coordinator/src/core/index.js'),
);
/** A build from before `batchYield` refuses the option: it gets one coordinator contender. */
const knowsBatchYield = 'batchYield' in WRITE_COORDINATOR_DEFAULTS;

const silent = { log() {}, warn() {}, error() {} };
const { dir, next: freshFile } = freshFiles('wc-lone-');

const BASELINE = callers === 1 ? 'plain loop (dataSource.transaction)' : 'FIFO around dataSource.transaction';
const CONTENDERS = knowsBatchYield
  ? [BASELINE, "coordinator, batchYield 'auto'", "coordinator, batchYield 'never'"]
  : [BASELINE, 'coordinator (a build without batchYield)'];

async function measure(contender, sync) {
  const dataSource = await openRows(freshFile(), {}, typeorm);
  let coordinator;
  let job;
  if (contender.startsWith('coordinator')) {
    const batchYield = knowsBatchYield ? { batchYield: contender.includes('never') ? 'never' : 'auto' } : {};
    coordinator = new Coordinator({ synchronous: sync, ...batchYield }, { log: silent });
    await coordinator.attach(dataSource);
    job = () => coordinator.run((manager) => manager.insert('Row', { v: 1 }));
  } else {
    await dataSource.query(`PRAGMA synchronous = ${sync}`);
    const plain = () => dataSource.transaction((manager) => manager.insert('Row', { v: 1 }));
    let tail = Promise.resolve();
    job = callers === 1 ? plain : () => (tail = tail.then(plain, plain));
  }
  const jobs = sync === 'FULL' ? 1_500 : 8_000;
  for (let i = 0; i < 200; i++) await job(); // warm-up
  let next = 0;
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next++ < jobs) await job();
    }),
  );
  const elapsed = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  if (coordinator) await coordinator.close();
  await dataSource.destroy();
  return { jobsPerSecond: (jobs / elapsed) * 1000, cpuMicrosPerJob: (cpu.user + cpu.system) / jobs };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = new Map();
let done = 0;
const total = rounds * levels.length * CONTENDERS.length;
for (let round = 0; round < rounds; round++) {
  for (const sync of levels) {
    for (const contender of CONTENDERS) {
      const run = await measure(contender, sync);
      const key = `${sync}\u0000${contender}`;
      results.set(key, [...(results.get(key) ?? []), run]);
      console.error(
        `[${++done}/${total}] ${sync.padEnd(6)} ${contender.padEnd(38)} ${Math.round(run.jobsPerSecond)} jobs/s`,
      );
    }
  }
}
rmSync(dir, { recursive: true, force: true });

console.log(
  `lone caller: ${callers} caller(s), one-row TypeORM inserts, medians of ${rounds} interleaved round(s); build: ${root}`,
);
const rows = [];
for (const sync of levels) {
  const plain = results.get(`${sync}\u0000${CONTENDERS[0]}`);
  const plainJobs = median(plain.map((r) => r.jobsPerSecond));
  const plainCpu = median(plain.map((r) => r.cpuMicrosPerJob));
  for (const contender of CONTENDERS) {
    const runs = results.get(`${sync}\u0000${contender}`);
    const jobs = median(runs.map((r) => r.jobsPerSecond));
    const cpu = median(runs.map((r) => r.cpuMicrosPerJob));
    rows.push({
      sync,
      contender,
      'jobs/s': Math.round(jobs),
      'CPU µs/job': cpu.toFixed(1),
      'jobs/s vs baseline': (jobs / plainJobs).toFixed(2),
      'CPU vs baseline': (cpu / plainCpu).toFixed(2),
    });
  }
}
console.table(rows);
