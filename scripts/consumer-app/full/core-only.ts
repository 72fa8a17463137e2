// The Nest-free entry in a process where no @nestjs/* package resolves: it must load none.
import { blocked } from './hide-nest';
import { Coordinator } from 'nestjs-sqlite-write-coordinator/core';
import { DataSource } from 'typeorm';
import { Account } from '../shared/ledger.entities';

/** Runs one write through a plain `Coordinator` on `argv[2]` and prints `REPORT <json>`. */
async function main(database: string): Promise<void> {
  const dataSource = await new DataSource({
    type: 'better-sqlite3',
    database,
    entities: [Account],
    synchronize: true,
  }).initialize();
  const coordinator = new Coordinator();
  await coordinator.attach(dataSource);
  const written = await coordinator.run(async (manager) => (await manager.save(Account, { id: 7, balance: 70 })).id);
  await coordinator.close();
  await dataSource.destroy();
  console.log(`REPORT ${JSON.stringify({ written, blocked })}`);
}

main(process.argv[2] ?? 'core-only.db').catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
