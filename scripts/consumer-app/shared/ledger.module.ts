import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { WriteCoordinatorModule, WriteCoordinatorOptions } from 'nestjs-sqlite-write-coordinator';
import { DepositService } from './deposit.service';
import { Account, Deposit } from './ledger.entities';

/** TypeORM on a SQLite file, the coordinator, and the deposit service. */
@Module({})
export class LedgerModule {
  /** @param extra more coordinator options (the full app adds its Prometheus instrumentation). */
  static forDatabase(database: string, extra: WriteCoordinatorOptions = {}): DynamicModule {
    return {
      module: LedgerModule,
      imports: [
        TypeOrmModule.forRoot({
          type: 'better-sqlite3',
          database,
          entities: [Account, Deposit],
          synchronize: true,
          enableWAL: true,
        }),
        TypeOrmModule.forFeature([Account, Deposit]),
        WriteCoordinatorModule.forRoot({ queueSize: 64, timeoutMs: 30_000, isGlobal: true, ...extra }),
      ],
      providers: [DepositService],
      exports: [DepositService],
    };
  }
}
