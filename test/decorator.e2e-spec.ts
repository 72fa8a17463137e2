import { INestApplication, Injectable, Scope } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import {
  CoordinatorNotReadyError,
  InjectWriteCoordinator,
  SerializedWrite,
  WriteCoordinator,
  WriteCoordinatorModule,
} from '@app/write-coordinator';
import { deferred } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { ItemWriter } from './fixtures/item.writer';
import { committedItems, sqliteOptions, tempDir } from './fixtures/temp-sqlite';

@Injectable()
class AuditWriter {
  constructor(
    @InjectRepository(Item, 'audit') private readonly items: Repository<Item>,
    @InjectWriteCoordinator('audit') readonly coordinator: WriteCoordinator,
  ) {}

  @SerializedWrite({ coordinator: 'audit' })
  async add(key: string): Promise<void> {
    await this.items.insert({ key, job: 0, step: 0 });
  }
}

/** Transient: every consumer gets its own instance, none of them the one Nest lists at bootstrap. */
@Injectable({ scope: Scope.TRANSIENT })
class TransientWriter {
  constructor(@InjectRepository(Item) private readonly items: Repository<Item>) {}

  @SerializedWrite()
  async add(key: string): Promise<void> {
    await this.items.insert({ key, job: 0, step: 0 });
  }
}

describe('@SerializedWrite', () => {
  let tmp: ReturnType<typeof tempDir>;
  let app: INestApplication;
  beforeEach(async () => {
    tmp = tempDir();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...sqliteOptions(tmp.file('main.db')), retryAttempts: 0 }),
        TypeOrmModule.forRoot({ ...sqliteOptions(tmp.file('audit.db')), name: 'audit', retryAttempts: 0 }),
        TypeOrmModule.forFeature([Item]),
        TypeOrmModule.forFeature([Item], 'audit'),
        WriteCoordinatorModule.forRoot(),
        WriteCoordinatorModule.forRoot({ name: 'audit', dataSource: 'audit' }),
      ],
      providers: [ItemWriter, AuditWriter, TransientWriter],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  });
  afterEach(async () => {
    await app.close();
    tmp.cleanup();
  });

  it('commits a decorated call and serialises concurrent calls', async () => {
    const writer = app.get(ItemWriter);
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => writer.add(`k${i}`)));
    expect(new Set(ids).size).toBe(20);
    expect(await committedItems(tmp.file('main.db'))).toHaveLength(20);
    expect(app.get(WriteCoordinator).metrics()).toMatchObject({ accepted: 20, completed: 20 });
  });

  it('completes nested decorated calls inline (no deadlock) as one job', async () => {
    const writer = app.get(ItemWriter);
    await writer.addPair('p');
    expect((await committedItems(tmp.file('main.db'))).map((i) => i.key)).toEqual(['p-a', 'p-b']);
    expect(app.get(WriteCoordinator).metrics()).toMatchObject({ accepted: 1, completed: 1 });
  });

  it('rolls back the nested writes when the outer call throws, and re-throws its error', async () => {
    const writer = app.get(ItemWriter);
    await expect(writer.addPairThenFail('q')).rejects.toThrow('q failed after its nested writes');
    expect(await committedItems(tmp.file('main.db'))).toHaveLength(0);
  });

  it('nests concurrent re-entrant calls made from one job properly', async () => {
    const writer = app.get(ItemWriter);
    const coordinator = app.get(WriteCoordinator);
    await coordinator.run(async () => {
      await Promise.all([writer.addPair('x'), writer.addPair('y'), writer.add('z')]);
      await Promise.allSettled([writer.addPairThenFail('gone'), writer.add('kept')]);
    });
    expect((await committedItems(tmp.file('main.db'))).map((i) => i.key)).toEqual([
      'x-a',
      'x-b',
      'y-a',
      'y-b',
      'z',
      'kept',
    ]);
  });

  it('runs through the coordinator on every instance of a transient provider', async () => {
    const [a, b] = [await app.resolve(TransientWriter), await app.resolve(TransientWriter)];
    expect(a).not.toBe(b);
    await Promise.all([a.add('t1'), b.add('t2')]);
    expect((await committedItems(tmp.file('main.db'))).map((i) => i.key).sort()).toEqual(['t1', 't2']);
    expect(app.get(WriteCoordinator).metrics()).toMatchObject({ completed: 2 });
  });

  it('keeps two coordinators on two DataSources independent', async () => {
    const writer = app.get(ItemWriter);
    const audit = app.get(AuditWriter);
    const release = deferred();
    const held = writer.addAndHold('held', release.promise);
    // The default coordinator is busy with an open transaction; the audit one is not blocked by it.
    await audit.add('audit-1');
    expect((await committedItems(tmp.file('audit.db'))).map((i) => i.key)).toEqual(['audit-1']);
    expect(await committedItems(tmp.file('main.db'))).toHaveLength(0);
    release.resolve();
    await held;
    expect((await committedItems(tmp.file('main.db'))).map((i) => i.key)).toEqual(['held']);
    expect(audit.coordinator).not.toBe(app.get(WriteCoordinator));
    expect(audit.coordinator.metrics()).toMatchObject({ coordinator: 'audit', accepted: 1, completed: 1 });
    expect(app.get(WriteCoordinator).metrics()).toMatchObject({ coordinator: 'default', accepted: 1, completed: 1 });
  });

  it('rejects with COORDINATOR_NOT_READY on an instance Nest never created, writing nothing', async () => {
    const repository = app.get(ItemWriter)['items'] as Repository<Item>;
    const stray = new ItemWriter(repository);
    await expect(stray.add('stray')).rejects.toBeInstanceOf(CoordinatorNotReadyError);
    await expect(stray.add('stray')).rejects.toMatchObject({ code: 'COORDINATOR_NOT_READY', retryable: true });
    expect(await committedItems(tmp.file('main.db'))).toHaveLength(0);
  });

  it('rejects with SHUTDOWN after the coordinator drained, never writing unserialised', async () => {
    const coordinator = app.get(WriteCoordinator);
    await coordinator.drain();
    await expect(app.get(ItemWriter).add('late')).rejects.toMatchObject({ code: 'SHUTDOWN' });
    expect(await committedItems(tmp.file('main.db'))).toHaveLength(0);
  });

  it('fails at decoration time on something that is not a method', () => {
    expect(() => {
      class Bad {
        value = 1;
      }
      SerializedWrite()(Bad.prototype, 'value', { value: 1 } as TypedPropertyDescriptor<number>);
    }).toThrow('@SerializedWrite() decorates methods only; Bad.value is not a method');
  });

  it('fails at decoration time on invalid options', () => {
    expect(() => SerializedWrite({ timeoutMs: -1 })).toThrow(
      '@SerializedWrite(): timeoutMs must be a finite number of ms greater than 0 (received -1, number)',
    );
  });
});
