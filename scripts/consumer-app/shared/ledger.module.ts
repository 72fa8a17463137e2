import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { WriteCoordinatorModule } from 'nestjs-sqlite-write-coordinator';
import { DepositService } from './deposit.service';
import { Account, Deposit } from './ledger.entities';

/** TypeORM on a SQLite file, the coordinator, and the deposit service. */
@Module({})
export class LedgerModule {
  static forDatabase(database: string): DynamicModule {
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
        WriteCoordinatorModule.forRoot({ queueSize: 64, timeoutMs: 30_000, isGlobal: true }),
      ],
      providers: [DepositService],
      exports: [DepositService],
    };
  }
}
