#!/usr/bin/env node
// What routing every write path through the coordinator costs per TypeORM call, side by side in one
// run on fresh WAL database files (synchronous=FULL on both sides):
//   1. inserts inside one transaction: plain dataSource.transaction() vs coordinator.run()
//      (the guard's per-call check inside a job);
//   2. reads outside any job: plain DataSource (shared connection) vs the coordinator's read connection;
//   3. one-row inserts outside any job, one after another: plain autocommit vs a transparent job each.
// Usage: npm run bench:write-paths [-- --ops 5000 --rounds 5]
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import library from '../dist/libs/write-coordinator/src/core/index.js';
import { freshFiles, integerFlag, openRows, rowSchema } from './rows.mjs';

const { Coordinator } = library;
const { values } = parseArgs({
  options: { ops: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '5' } },
});
const OPS = integerFlag('ops', values.ops);
const ROUNDS = integerFlag('rounds', values.rounds);

const Row = rowSchema();
const { dir, next: freshFile } = freshFiles('wc-bench-');

/** A fresh DataSource on a new WAL file, with or without a coordinator attached. */
async function open(coordinated) {
  const ds = await openRows(freshFile());
  ds.driver.databaseConnection.pragma('synchronous = FULL');
  if (!coordinated) return { ds, close: () => ds.destroy() };
  const coordinator = new Coordinator();
  await coordinator.attach(ds);
  return {
    ds,
    coordinator,
    close: async () => {
      await coordinator.close();
      await ds.destroy();
    },
  };
}

const insertMany = async (m) => {
  for (let i = 0; i < OPS; i++) await m.insert(Row, { v: i });
};

const cases = [
  {
    name: `${OPS} inserts in one transaction`,
    plain: ({ ds }) => ds.transaction(insertMany),
    coordinated: ({ coordinator }) => coordinator.run(insertMany),
  },
  {
    name: `${OPS} findOneBy outside jobs`,
    prepare: ({ ds }) => ds.getRepository(Row).insert(Array.from({ length: 100 }, (_, v) => ({ v }))),
    plain: async ({ ds }) => {
      for (let i = 0; i < OPS; i++) await ds.getRepository(Row).findOneBy({ id: 1 + (i % 100) });
    },
    coordinated: async ({ ds }) => {
      for (let i = 0; i < OPS; i++) await ds.getRepository(Row).findOneBy({ id: 1 + (i % 100) });
    },
  },
  {
    name: `${Math.ceil(OPS / 10)} one-row inserts outside jobs (a commit each)`,
    plain: async ({ ds }) => {
      for (let i = 0; i < OPS / 10; i++) await ds.getRepository(Row).insert({ v: i });
    },
    coordinated: async ({ ds }) => {
      for (let i = 0; i < OPS / 10; i++) await ds.getRepository(Row).insert({ v: i });
    },
  },
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One timed run on a fresh file, in ms. */
async function once(run, coordinated, prepare) {
  const target = await open(coordinated);
  await prepare?.(target);
  const started = process.hrtime.bigint();
  await run(target);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  await target.close();
  process.stderr.write('.');
  return ms;
}

/** Median times of both sides, their rounds interleaved (alternating which goes first) to cancel drift. */
async function time(c) {
  const plain = [];
  const coordinated = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) plain.push(await once(c.plain, false, c.prepare));
    coordinated.push(await once(c.coordinated, true, c.prepare));
    if (r % 2 === 1) plain.push(await once(c.plain, false, c.prepare));
  }
  return { plain: median(plain), coordinated: median(coordinated) };
}

try {
  console.log(
    `write-paths overhead: median of ${ROUNDS} interleaved rounds, fresh WAL file per round, synchronous=FULL`,
  );
  const rows = [];
  for (const c of cases) {
    process.stderr.write(`${c.name} `);
    const { plain, coordinated } = await time(c);
    process.stderr.write('\n');
    const ops = c.name.startsWith(String(OPS)) ? OPS : Math.ceil(OPS / 10);
    rows.push({
      case: c.name,
      'plain TypeORM (µs/op)': ((plain * 1000) / ops).toFixed(1),
      'with coordinator (µs/op)': ((coordinated * 1000) / ops).toFixed(1),
      'plain / coordinated': (plain / coordinated).toFixed(2),
    });
  }
  console.table(rows);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
