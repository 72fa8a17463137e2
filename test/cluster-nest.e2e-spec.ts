import { Inject, Injectable, INestApplication, Module, Scope } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import {
  InvalidParamsError,
  SerializedWrite,
  WriteChange,
  WriteCoordinator,
  WriteCoordinatorEvents,
  WriteCoordinatorHealthIndicator,
  WriteHandler,
} from '@app/write-coordinator';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Item } from './fixtures/item.entity';
import { committedItems, tempDir } from './fixtures/temp-sqlite';
import { createTestingApp } from './fixtures/testing-app';

/** Which app an instance belongs to, so a result says where it ran. */
const APP = 'APP_NAME';

@Injectable()
class ClusterItems {
  constructor(
    @InjectRepository(Item) private readonly items: Repository<Item>,
    @Inject(APP) private readonly app: string,
  ) {}

  @SerializedWrite({ forward: true, name: 'items.add' })
  async add(key: string, job = 0): Promise<{ id: number; key: string; ranOn: string }> {
    const { identifiers } = await this.items.insert({ key, job, step: 0 });
    return { id: identifiers[0].id as number, key, ranOn: this.app };
  }

  @SerializedWrite({ forward: true, name: 'items.fail' })
  async fail(key: string): Promise<void> {
    await this.items.insert({ key, job: 0, step: 0 });
    throw new Error(`${key}: the method failed after its insert`);
  }

  /** Not forwarded: always runs where it is called, under SQLite's lock. */
  @SerializedWrite()
  async addHere(key: string): Promise<string> {
    await this.items.insert({ key, job: 0, step: 0 });
    return this.app;
  }

  /** A forwardable call made inside a local job runs inline, in that job. */
  @SerializedWrite()
  async addTwoHere(prefix: string): Promise<string[]> {
    const a = await this.add(`${prefix}-1`);
    const b = await this.add(`${prefix}-2`);
    return [a.ranOn, b.ranOn];
  }

  @WriteHandler('items.submit')
  async submitted(params: { key: string }, manager: EntityManager): Promise<{ key: string; ranOn: string }> {
    if (typeof params?.key !== 'string') throw new InvalidParamsError('key must be a string');
    await manager.insert(Item, { key: params.key, job: 0, step: 0 });
    return { key: params.key, ranOn: this.app };
  }
}

/** Request-scoped: no single instance for the primary to call, so its calls always run where made. */
@Injectable({ scope: Scope.TRANSIENT })
class TransientItems {
  constructor(
    @InjectRepository(Item) private readonly items: Repository<Item>,
    @Inject(APP) private readonly app: string,
  ) {}

  @SerializedWrite({ forward: true, name: 'transient.add' })
  async add(key: string): Promise<string> {
    await this.items.insert({ key, job: 0, step: 0 });
    return this.app;
  }
}

function appModule(name: string) {
  @Module({
    imports: [TypeOrmModule.forFeature([Item])],
    providers: [ClusterItems, TransientItems, { provide: APP, useValue: name }],
  })
  class FeatureModule {}
  return FeatureModule;
}

describe('cluster in Nest apps: a primary and a secondary on one file', () => {
  let tmp: ReturnType<typeof tempDir>;
  let primary: INestApplication;
  let secondary: INestApplication;
  const events: Array<{ app: string; name: string; payload: Record<string, unknown> }> = [];

  const boot = async (name: string) => {
    const app = await createTestingApp({
      database: tmp.file('app.db'),
      coordinator: { cluster: { retryMs: 10, heartbeatMs: 100 } },
      imports: [{ module: appModule(name) }],
      providers: [HealthIndicatorService, WriteCoordinatorHealthIndicator],
    });
    const emitter = app.get(EventEmitter2);
    emitter.onAny((event: string | string[], payload: Record<string, unknown>) =>
      events.push({ app: name, name: String(event), payload }),
    );
    return app;
  };

  beforeEach(async () => {
    events.length = 0;
    tmp = tempDir('wc-cluster-nest-');
    primary = await boot('primary');
    secondary = await boot('secondary');
  });
  afterEach(async () => {
    await secondary?.close();
    await primary?.close();
    tmp.cleanup();
  });

  const items = (app: INestApplication) => app.get(ClusterItems, { strict: false });
  const coordinator = (app: INestApplication) => app.get(WriteCoordinator);

  it('the first app is the primary, the second its secondary; metrics say so', () => {
    expect(coordinator(primary).metrics().cluster).toMatchObject({
      role: 'primary',
      peers: 1,
      primaryPid: process.pid,
    });
    expect(coordinator(secondary).metrics().cluster).toMatchObject({
      role: 'secondary',
      peers: 1,
      primaryResponsive: true,
    });
  });

  it('@SerializedWrite({ forward: true }) on the secondary runs on the primary; plain @SerializedWrite runs here', async () => {
    const result = await items(secondary).add('forwarded', 7);
    expect(result).toEqual({ id: expect.any(Number), key: 'forwarded', ranOn: 'primary' });
    expect(await items(secondary).addHere('local')).toBe('secondary');
    expect((await committedItems(tmp.file('app.db'))).map((i) => i.key)).toEqual(['forwarded', 'local']);
    expect(coordinator(secondary).metrics().cluster).toMatchObject({ forwarded: 1, forwardedInFlight: 0 });
    expect(coordinator(primary).metrics().cluster).toMatchObject({ forwarded: 1 });
  });

  it('forward: true on a transient provider runs where it is called (the primary has no instance to call)', async () => {
    const transient = await secondary.resolve(TransientItems);
    expect(await transient.add('here')).toBe('secondary');
    expect((await committedItems(tmp.file('app.db'))).map((i) => i.key)).toEqual(['here']);
  });

  it('inside a local job, a forwardable call runs inline in that job (forwarding would wait for our own lock)', async () => {
    expect(await items(secondary).addTwoHere('inline')).toEqual(['secondary', 'secondary']);
    expect(coordinator(secondary).metrics().cluster).toMatchObject({ forwarded: 0 });
  });

  it('submit() of a @WriteHandler on the secondary runs on the primary; typed errors cross with code and retryable', async () => {
    const writes = coordinator(secondary);
    await expect(writes.submit({ method: 'items.submit', params: { key: 's1' } })).resolves.toEqual({
      key: 's1',
      ranOn: 'primary',
    });
    await expect(writes.submit({ method: 'items.submit', params: { key: 's1' } })).rejects.toMatchObject({
      code: 'CONFLICT',
      retryable: false,
    });
    await expect(writes.submit({ method: 'items.submit', params: {} })).rejects.toMatchObject({
      name: 'InvalidParamsError',
      code: 'INVALID_PARAMS',
    });
    await expect(items(secondary).fail('boom')).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining('boom: the method failed after its insert'),
    });
    expect((await committedItems(tmp.file('app.db'))).map((i) => i.key)).toEqual(['s1']); // failures rolled back
  });

  it("the secondary's EventEmitter2 hears the primary's committed changes, in commit order", async () => {
    await items(primary).add('p1');
    await items(secondary).add('f1');
    await coordinator(secondary).submit({ method: 'items.submit', params: { key: 'f2' } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const heard = (app: string) =>
      events
        .filter((e) => e.app === app && e.name === WriteCoordinatorEvents.Change)
        .map((e) => e.payload as unknown as WriteChange)
        .map((c) => (c.kind === 'request' ? `request:${c.method}` : `${c.entity}:${c.operation}`));
    expect(heard('secondary')).toEqual(['Item:inserted', 'Item:inserted', 'Item:inserted', 'request:items.submit']);
    expect(heard('secondary')).toEqual(heard('primary'));
  });

  it('the primary closing hands over: PrimaryLost, then the secondary promotes itself and writes here', async () => {
    const primaryPid = coordinator(primary).metrics().cluster!.primaryPid;
    await primary.close();
    primary = undefined as never;
    for (let i = 0; i < 100 && coordinator(secondary).metrics().cluster!.role !== 'primary'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const names = events.filter((e) => e.app === 'secondary').map((e) => e.name);
    expect(names).toEqual(
      expect.arrayContaining([WriteCoordinatorEvents.PrimaryLost, WriteCoordinatorEvents.RoleChanged]),
    );
    expect(
      events.find((e) => e.app === 'secondary' && e.name === WriteCoordinatorEvents.PrimaryLost)?.payload,
    ).toMatchObject({
      primaryPid,
    });
    // (its first RoleChanged, to secondary, came at bootstrap, before this test listened)
    expect(
      events
        .filter((e) => e.app === 'secondary' && e.name === WriteCoordinatorEvents.RoleChanged)
        .map((e) => e.payload),
    ).toEqual([
      { coordinator: 'default', role: 'primary', previous: 'secondary', pid: process.pid, primaryPid: process.pid },
    ]);
    expect(coordinator(secondary).metrics().cluster).toMatchObject({ role: 'primary', roleChanges: 2 });
    expect(await items(secondary).add('after')).toMatchObject({ ranOn: 'secondary' });
    expect(events.some((e) => e.app === 'secondary' && e.name === WriteCoordinatorEvents.ChangesMissed)).toBe(false);
  });

  it('health: the secondary is up with its primary, down once it has had none for maxWithoutPrimaryMs', async () => {
    const health = secondary.get(WriteCoordinatorHealthIndicator);
    expect((await health.isHealthy('writes')).writes.status).toBe('up');
    // A primary that leaves without a successor: this secondary may not promote itself.
    await secondary.close();
    secondary = await createTestingApp({
      database: tmp.file('app.db'),
      coordinator: { cluster: { role: 'secondary', retryMs: 10 } },
      imports: [{ module: appModule('secondary') }],
      providers: [HealthIndicatorService, WriteCoordinatorHealthIndicator],
    });
    await primary.close();
    primary = undefined as never;
    const indicator = secondary.get(WriteCoordinatorHealthIndicator);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const result = await indicator.isHealthy('writes', { maxWithoutPrimaryMs: 100 });
    expect(result.writes).toMatchObject({ status: 'down', reason: expect.stringContaining('no primary') });
  });
});
