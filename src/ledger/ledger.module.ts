import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Account } from './account.entity';
import { LedgerController } from './ledger.controller';
import { LedgerService } from './ledger.service';
import { Transfer } from './transfer.entity';

@Module({
  imports: [TypeOrmModule.forFeature([Account, Transfer])],
  controllers: [LedgerController],
  providers: [LedgerService],
})
export class LedgerModule {}
