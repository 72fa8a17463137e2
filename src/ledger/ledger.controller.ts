import { Body, Controller, Get, Param, ParseIntPipe, Patch, Post } from '@nestjs/common';
import { Account } from './account.entity';
import { CreateTransferDto } from './dto/create-transfer.dto';
import { OpenAccountDto } from './dto/open-account.dto';
import { RenameAccountDto } from './dto/rename-account.dto';
import { LedgerService } from './ledger.service';
import { Transfer } from './transfer.entity';

@Controller()
export class LedgerController {
  constructor(private readonly ledger: LedgerService) {}

  @Post('accounts')
  openAccount(@Body() dto: OpenAccountDto): Promise<Account> {
    return this.ledger.openAccount(dto);
  }

  @Get('accounts')
  listAccounts(): Promise<Account[]> {
    return this.ledger.listAccounts();
  }

  @Get('accounts/:id')
  getAccount(@Param('id', ParseIntPipe) id: number): Promise<Account> {
    return this.ledger.getAccount(id);
  }

  @Patch('accounts/:id')
  renameAccount(@Param('id', ParseIntPipe) id: number, @Body() dto: RenameAccountDto): Promise<Account> {
    return this.ledger.renameAccount(id, dto);
  }

  @Post('transfers')
  transfer(@Body() dto: CreateTransferDto): Promise<Transfer> {
    return this.ledger.transfer(dto);
  }

  @Get('totals')
  totals() {
    return this.ledger.totals();
  }
}
