import {
  BadRequestException,
  ConflictException,
  Injectable,
  NotFoundException,
  UnprocessableEntityException,
} from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { QueryFailedError, Repository } from 'typeorm';
import { SerializedWrite } from 'nestjs-sqlite-write-coordinator';
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
 */
@Injectable()
export class LedgerService {
  constructor(
    @InjectRepository(Account) private readonly accounts: Repository<Account>,
    @InjectRepository(Transfer) private readonly transfers: Repository<Transfer>,
  ) {}

  @SerializedWrite({ label: 'ledger.openAccount' })
  async openAccount(dto: OpenAccountDto): Promise<Account> {
    if (await this.accounts.existsBy({ name: dto.name })) {
      throw new UnprocessableEntityException(`an account named '${dto.name}' already exists`);
    }
    return this.accounts.save(this.accounts.create({ name: dto.name, balance: dto.initialBalance }));
  }

  @SerializedWrite({ label: 'ledger.transfer' })
  async transfer(dto: CreateTransferDto): Promise<Transfer> {
    if (dto.fromId === dto.toId) throw new BadRequestException('fromId and toId must differ');
    const from = await this.getAccount(dto.fromId);
    const to = await this.getAccount(dto.toId);
    if (from.balance < dto.amount) {
      throw new UnprocessableEntityException(`account ${from.id} has ${from.balance}, cannot send ${dto.amount}`);
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
