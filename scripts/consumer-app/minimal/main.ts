import 'reflect-metadata';
import { createRequire } from 'node:module';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  InjectWriteCoordinator,
  WriteCoordinator,
  WriteCoordinatorError,
  WriteCoordinatorHealthIndicator,
} from 'nestjs-sqlite-write-coordinator';
import { readCommitted } from '../shared/committed';
import { DepositService } from '../shared/deposit.service';
import { Account } from '../shared/ledger.entities';
import { LedgerModule } from '../shared/ledger.module';

/** Whether `name` resolves from the library's own location, as its optional `require` does. */
function resolvable(name: string): boolean {
  const fromLibrary = createRequire(require.resolve('nestjs-sqlite-write-coordinator'));
  try {
    fromLibrary.resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** Opens the account through an injected coordinator. */
class Opener {
  constructor(@InjectWriteCoordinator() readonly writes: WriteCoordinator) {}
}

/**
 * Boots with neither @nestjs/event-emitter nor @nestjs/terminus installed, makes 50 concurrent
 * deposits and prints `REPORT <json>`.
 */
async function main(database: string): Promise<void> {
  @Module({ imports: [LedgerModule.forDatabase(database)], providers: [Opener] })
  class AppModule {}

  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  await app.get(Opener).writes.run((manager) => manager.insert(Account, { id: 1, balance: 0 }));
  const ledger = app.get(DepositService);
  const settled = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => ledger.deposit(`d${i}`)));
  let health: unknown;
  try {
    health = await app.get(WriteCoordinatorHealthIndicator).isHealthy();
  } catch (error) {
    health = error instanceof WriteCoordinatorError ? { code: error.code, message: error.message } : String(error);
  }
  await app.close();

  const report = {
    installed: { eventEmitter: resolvable('@nestjs/event-emitter'), terminus: resolvable('@nestjs/terminus') },
    acknowledged: settled.flatMap((s, i) => (s.status === 'fulfilled' ? [{ ref: `d${i}`, balance: s.value }] : [])),
    rejected: settled.filter((s) => s.status === 'rejected').length,
    committed: readCommitted(database),
    health,
  };
  console.log(`REPORT ${JSON.stringify(report)}`);
}

main(process.argv[2] ?? 'minimal.db').catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
