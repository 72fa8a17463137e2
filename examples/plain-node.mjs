#!/usr/bin/env node
// The write coordinator without Nest: a plain Node script (or worker) that serialises the SQLite
// writes of its TypeORM DataSource through a `Coordinator`. See docs/getting-started.md,
// "Without Nest: a script or worker".
//
// Run it from the repository root once the library is built:
//   npx nest build && node examples/plain-node.mjs [database file, default plain-node.db]
//
// It imports the library's built entry point, because the package is not published yet. That file
// is the package: in your own code, import the same names by the package name instead,
//   import { Coordinator, WriteCoordinatorError } from 'nestjs-sqlite-write-coordinator/core';
// (docs/getting-started.md shows this code so; test/plain-node-example.e2e-spec.ts checks that the
// page and this file say the same, and runs this file.)
import { DataSource, EntitySchema } from 'typeorm';
import { Coordinator, WriteCoordinatorError } from '../dist/libs/write-coordinator/src/core/index.js';

const Counter = new EntitySchema({
  name: 'Counter',
  tableName: 'counters',
  columns: { name: { type: 'text', primary: true }, value: { type: 'integer' } },
});
const Visit = new EntitySchema({
  name: 'Visit',
  tableName: 'visits',
  columns: { id: { type: 'integer', primary: true, generated: true }, page: { type: 'text' } },
});

const database = process.argv[2] ?? 'plain-node.db';
const dataSource = await new DataSource({
  type: 'better-sqlite3',
  database,
  entities: [Counter, Visit],
  synchronize: true,
  enableWAL: true,
}).initialize();

const coordinator = new Coordinator({ name: 'script', timeoutMs: 5_000 });
// From here on, every write on this DataSource goes through the coordinator's single drain.
await coordinator.attach(dataSource);

// A named write for submit(): what @WriteHandler registers in a Nest app. `validate` refuses bad
// params before anything is queued.
coordinator.handle('visit.record', (params, manager) => manager.save(Visit, { page: params.page }), {
  validate: (params) => typeof params?.page === 'string',
});

try {
  // Five read-modify-write jobs at once. They run one at a time, in the order they were called, each
  // committed on its own (or together in one group-commit transaction), so no increment is lost.
  const increments = await Promise.all(
    [1, 2, 3, 4, 5].map((n) =>
      coordinator.run(
        async (manager) => {
          const counter = (await manager.findOneBy(Counter, { name: 'hits' })) ?? { name: 'hits', value: 0 };
          counter.value += 1;
          await manager.save(Counter, counter);
          return counter.value;
        },
        { label: `increment ${n}` },
      ),
    ),
  );
  console.log(`run: 5 concurrent increments returned ${increments.join(', ')}`);

  const visit = await coordinator.submit({ method: 'visit.record', params: { page: '/home' } });
  console.log(`submit: visit.record returned ${JSON.stringify(visit)}`);

  try {
    await coordinator.submit({ method: 'visit.record', params: { page: 42 } });
  } catch (error) {
    if (!(error instanceof WriteCoordinatorError)) throw error;
    console.log(`submit: visit.record with a bad page was refused with ${error.code}`);
  }

  const { accepted, completed, failed, rejected, batches } = coordinator.metrics();
  console.log(
    `metrics: accepted ${accepted}, completed ${completed}, failed ${failed}, rejected ${rejected}, ` +
      `${batches.jobs} jobs committed in ${batches.committed} transaction(s)`,
  );
} finally {
  await coordinator.close(); // drains what is still queued, stops, gives the DataSource back
  await dataSource.destroy();
}
console.log(`closed: the rows are in ${database}`);
