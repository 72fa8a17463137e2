import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { QueryFailedError, Repository } from 'typeorm';
import { ConflictError, InvalidParamsError, SerializedWrite } from 'nestjs-sqlite-write-coordinator';
import { Account } from './account.entity';
import { OpenAccountDto } from './dto/open-account.dto';
import { CreateTransferDto } from './dto/create-transfer.dto';
import { RenameAccountDto } from './dto/rename-account.dto';
import { Transfer } from './transfer.entity';

/**
 * The ledger. Writes that read, check and then write are `@SerializedWrite` methods: each runs
 * alone, in one transaction, so a transfer's read-check-update cannot interleave with another
 * request's, and a failed transfer leaves nothing behind. Single-statement writes and reads need
 * nothing: the module serialises the former and serves the latter from committed state.
 *
 * With several processes (`WORKERS` > 1) the two `@SerializedWrite` methods are `forward: true`: a
 * worker that is not the elected primary sends the call (JSON arguments) to the primary, which runs
 * it in its queue and group commit. Their refusals are therefore coordinator errors, which cross
 * processes with their code (a Nest `HttpException` would arrive as `INTERNAL`), so the answer's
 * status is the same whichever worker took the request: `InvalidParamsError` → 400 (same account
 * twice, unknown account), `ConflictError` → 409 (insufficient funds, name taken).
 */
@Injectable()
export class LedgerService {
  constructor(
    @InjectRepository(Account) private readonly accounts: Repository<Account>,
    @InjectRepository(Transfer) private readonly transfers: Repository<Transfer>,
  ) {}

  @SerializedWrite({ label: 'ledger.openAccount', forward: true, name: 'ledger.openAccount' })
  async openAccount(dto: OpenAccountDto): Promise<Account> {
    if (await this.accounts.existsBy({ name: dto.name })) {
      throw new ConflictError(`an account named '${dto.name}' already exists`);
    }
    return this.accounts.save(this.accounts.create({ name: dto.name, balance: dto.initialBalance }));
  }

  @SerializedWrite({ label: 'ledger.transfer', forward: true, name: 'ledger.transfer' })
  async transfer(dto: CreateTransferDto): Promise<Transfer> {
    if (dto.fromId === dto.toId) throw new InvalidParamsError('fromId and toId must differ');
    const from = await this.accountToMove(dto.fromId);
    const to = await this.accountToMove(dto.toId);
    if (from.balance < dto.amount) {
      throw new ConflictError(`account ${from.id} has ${from.balance}, cannot send ${dto.amount}`);
    }
    from.balance -= dto.amount;
    to.balance += dto.amount;
    await this.accounts.save([from, to]);
    return this.transfers.save(this.transfers.create({ fromId: from.id, toId: to.id, amount: dto.amount }));
  }

  /**
   * A plain repository write with no decorator: WriteCoordinatorModule still runs it as its own
   * job (`writesOutsideJobs: 'serialize'`), so it can never land inside a transfer's transaction.
   * A name already taken fails on the UNIQUE index and changes nothing.
   */
  async renameAccount(id: number, dto: RenameAccountDto): Promise<Account> {
    const { affected } = await this.accounts.update({ id }, { name: dto.name }).catch((error: unknown) => {
      if (error instanceof QueryFailedError && String(error.driverError?.code) === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new ConflictException(`an account named '${dto.name}' already exists`);
      }
      throw error;
    });
    if (!affected) throw new NotFoundException(`account ${id} does not exist`);
    return this.getAccount(id);
  }

  /** An account a transfer names; a missing one is a bad parameter of the transfer (400). */
  private async accountToMove(id: number): Promise<Account> {
    const account = await this.accounts.findOneBy({ id });
    if (!account) throw new InvalidParamsError(`account ${id} does not exist`);
    return account;
  }

  listAccounts(): Promise<Account[]> {
    return this.accounts.find({ order: { id: 'ASC' } });
  }

  async getAccount(id: number): Promise<Account> {
    const account = await this.accounts.findOneBy({ id });
    if (!account) throw new NotFoundException(`account ${id} does not exist`);
    return account;
  }

  /** Sum of all balances and number of accounts and transfers: transfers must conserve the sum. */
  async totals(): Promise<{ accounts: number; transfers: number; totalBalance: number }> {
    const row = await this.accounts
      .createQueryBuilder('a')
      .select('COUNT(*)', 'accounts')
      .addSelect('COALESCE(SUM(a.balance), 0)', 'totalBalance')
      .getRawOne<{ accounts: number; totalBalance: number }>();
    return {
      accounts: Number(row?.accounts ?? 0),
      transfers: await this.transfers.count(),
      totalBalance: Number(row?.totalBalance ?? 0),
    };
  }
}
