import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  InvalidOptionsError,
  WriteCoordinator,
  WriteCoordinatorFactoryOptions,
  WriteCoordinatorModule,
  WriteCoordinatorOptionsFactory,
  WriteHandler,
  getWriteCoordinatorToken,
} from '@app/write-coordinator';
import { Item } from './fixtures/item.entity';
import { committedItems, openDataSource, sqliteOptions, tempDir } from './fixtures/temp-sqlite';

@Injectable()
class OptionsFactory implements WriteCoordinatorOptionsFactory {
  createWriteCoordinatorOptions(): WriteCoordinatorFactoryOptions {
    return { queueSize: 7, whenFull: 'reject' };
  }
}

describe('WriteCoordinatorModule bootstrap', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  const boot = async (...imports: unknown[]) => {
    const moduleRef = await Test.createTestingModule({
      // No retries: a failed bootstrap must not leave TypeORM reconnecting after the test.
      imports: [
        TypeOrmModule.forRoot({ ...sqliteOptions(tmp.file('opts.db')), retryAttempts: 0 }),
        ...(imports as never[]),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    return app;
  };

  it('fails forRoot() with INVALID_OPTIONS naming the field', async () => {
    await expect(boot(WriteCoordinatorModule.forRoot({ queueSize: 2.5 }))).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      field: 'queueSize',
      message: expect.stringContaining('queueSize must be an integer (received 2.5, number)'),
    });
  });

  it('fails forRootAsync() with INVALID_OPTIONS from the factory result', async () => {
    await expect(
      boot(WriteCoordinatorModule.forRootAsync({ useFactory: () => ({ whenFull: 'sometimes' as never }) })),
    ).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'whenFull' });
  });

  it('fails when the factory returns a name other than the static one', async () => {
    await expect(
      boot(WriteCoordinatorModule.forRootAsync({ useFactory: () => ({ name: 'other' }) as never })),
    ).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'name' });
  });

  it('fails when the named DataSource does not exist', async () => {
    await expect(boot(WriteCoordinatorModule.forRoot({ dataSource: 'missing' }))).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      field: 'dataSource',
      message: expect.stringContaining("TypeOrmModule.forRoot({ name: 'missing' })"),
    });
  });

  it('fails when two @WriteHandler methods claim the same method on one coordinator', async () => {
    @Injectable()
    class First {
      @WriteHandler('same.method')
      handle(): void {}
    }
    @Injectable()
    class Second {
      @WriteHandler('same.method')
      handle(): void {}
    }
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...sqliteOptions(tmp.file('opts.db')), retryAttempts: 0 }),
        WriteCoordinatorModule.forRoot(),
      ],
      providers: [First, Second],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await expect(app.init()).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: expect.stringContaining("@WriteHandler('same.method') must be registered once per coordinator"),
    });
    await app.close();
  });

  it('fails when two registrations use the same name', async () => {
    await expect(
      boot(WriteCoordinatorModule.forRoot(), WriteCoordinatorModule.forRoot({ queueSize: 9 })),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      field: 'name',
      message: expect.stringContaining(
        "name must be unique: one WriteCoordinatorModule registration per name (received 'default', string)",
      ),
    });
  });

  it('fails when the factory returns isGlobal (it is static)', async () => {
    await expect(
      boot(WriteCoordinatorModule.forRootAsync({ useFactory: () => ({ isGlobal: true }) as never })),
    ).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'isGlobal' });
  });

  it('fails on an invalid static name at once', () => {
    expect(() => WriteCoordinatorModule.forRoot({ name: '' })).toThrow(InvalidOptionsError);
  });

  it('builds a named coordinator from useClass, with its options', async () => {
    const app = await boot(WriteCoordinatorModule.forRootAsync({ name: 'async', useClass: OptionsFactory }));
    const coordinator = app.get<WriteCoordinator>(getWriteCoordinatorToken('async'));
    expect(coordinator.name).toBe('async');
    expect(coordinator.metrics()).toMatchObject({ maxQueue: 7 });
    await app.close();
  });

  it('accepts a DataSource instance', async () => {
    const dataSource = await openDataSource(tmp.file('own.db'));
    const app = await boot(WriteCoordinatorModule.forRoot({ name: 'own', dataSource }));
    const coordinator = app.get<WriteCoordinator>(getWriteCoordinatorToken('own'));
    await coordinator.run((m) => m.insert(Item, { key: 'own', job: 1, step: 1 }));
    expect(await committedItems(tmp.file('own.db'))).toHaveLength(1);
    await app.close();
    await dataSource.destroy();
  });
});
