import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { SerializedWrite } from 'nestjs-sqlite-write-coordinator';
import { Repository } from 'typeorm';
import { Account, Deposit } from './ledger.entities';

/** A read-modify-write: without serialisation, concurrent calls lose updates or share transactions. */
@Injectable()
export class DepositService {
  constructor(
    @InjectRepository(Account) private readonly accounts: Repository<Account>,
    @InjectRepository(Deposit) private readonly deposits: Repository<Deposit>,
  ) {}

  /** Credits 1 to account 1 and records the deposit; returns the balance it left. */
  @SerializedWrite({ label: 'deposit' })
  async deposit(ref: string): Promise<number> {
    const account = await this.accounts.findOneByOrFail({ id: 1 });
    // Yield to the event loop between the read and the writes, as real work (I/O) would.
    await new Promise((resolve) => setImmediate(resolve));
    const balance = account.balance + 1;
    await this.accounts.update({ id: 1 }, { balance });
    await this.deposits.insert({ ref, balanceAfter: balance });
    return balance;
  }
}
