import { statSync } from 'node:fs';
import { DataSource } from 'typeorm';
import { Coordinator, WriteCoordinatorOptions } from '@app/write-coordinator';
import { Item } from './fixtures/item.entity';
import { openDataSource } from './fixtures/temp-sqlite';
import { addItem, useClusterMembers } from './fixtures/cluster-in-process';
import { RawClusterClient } from './fixtures/raw-cluster-client';

/** Two plain coordinators on one file in this process: the first takes the lock, the second forwards. */
describe('cluster without Nest: Coordinator with the cluster option', () => {
  const { member: join, rows, file } = useClusterMembers('wc-cluster-core-');
  const member = (options: WriteCoordinatorOptions = {}, register = true) =>
    join(options, register ? (c) => c.handle('add', addItem) : undefined);

  it('creates the socket owner-only next to the database, and the lock file', async () => {
    const primary = await member();
    const { address } = primary.metrics().cluster!;
    expect(address).toBe(`unix:${file('app.db')}.wc.sock`);
    expect(statSync(file('app.db.wc.sock')).mode & 0o777).toBe(0o600);
    expect(statSync(file('app.db.primary-lock')).isFile()).toBe(true);
  });

  it('remembers a request id for dedupeWindowMs, then prunes it (the same id then runs again)', async () => {
    await member({ cluster: { dedupeWindowMs: 200, pruneIntervalMs: 50 } });
    const secondary = await member();
    const submit = (key: string) => secondary.submit({ method: 'add', params: { key }, meta: { requestId: 'r1' } });
    await expect(submit('first')).resolves.toEqual({ key: 'first' });
    await expect(submit('first')).resolves.toEqual({ key: 'first' }); // recorded: not run again
    await expect(submit('other')).rejects.toMatchObject({ code: 'INVALID_PARAMS' }); // same id, other request
    expect(rows('SELECT key FROM items')).toEqual([{ key: 'first' }]);
    expect(rows('SELECT request_id FROM _write_coordinator_requests')).toEqual([{ request_id: 'r1' }]);

    const deadline = Date.now() + 5_000;
    while (rows('SELECT request_id FROM _write_coordinator_requests').length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(rows('SELECT request_id FROM _write_coordinator_requests')).toEqual([]);
    await expect(submit('other')).resolves.toEqual({ key: 'other' }); // forgotten: a new request
    expect(rows('SELECT key FROM items ORDER BY id')).toEqual([{ key: 'first' }, { key: 'other' }]);
  });

  it('a local submit() with a request id on the primary is applied once too', async () => {
    const primary = await member();
    const request = { method: 'add', params: { key: 'p' }, meta: { requestId: 'local-1' } };
    await primary.submit(request);
    await primary.submit(request);
    expect(rows('SELECT key FROM items')).toEqual([{ key: 'p' }]);
  });

  it('drops a secondary that stops reading its changes (SLOW_CONSUMER) instead of buffering without bound; the others go on', async () => {
    const primary = await member({ maxPayloadBytes: 1_024 }); // frames ≤ 66 KiB: backlog limit 4 × that
    const stuck = await RawClusterClient.connect(primary.metrics().cluster!.address);
    stuck.send({ type: 'hello', protocol: 1, pid: 1, handlers: ['submit:add'], changes: true });
    expect(await stuck.until((frames) => frames.some((f) => f.type === 'welcome'))).toBe(true);
    stuck.pause();
    const secondary = await member();
    for (let round = 0; round < 20 && primary.metrics().cluster!.peers > 1; round++) {
      await Promise.all(
        Array.from({ length: 250 }, (_, i) => primary.submit({ method: 'add', params: { key: `k${round}-${i}` } })),
      );
    }
    expect(primary.metrics().cluster!.peers).toBe(1); // only the good secondary is left
    await expect(secondary.submit({ method: 'add', params: { key: 'after' } })).resolves.toEqual({ key: 'after' });
    stuck.resume();
    expect(await stuck.until((frames) => frames.some((f) => f.type === 'error'))).toBe(true);
    expect(stuck.errors[0]).toMatchObject({ code: 'SLOW_CONSUMER' });
    expect(await stuck.closedWithin()).toBe(true);
  });

  it('refuses a handler registered after attach(): its name would be missing from the handshake', async () => {
    const primary = await member();
    expect(() => primary.handle('late', () => undefined)).toThrow(
      "Coordinator.handle(): method must be registered before attach() (the cluster option is on) (received 'late', string)",
    );
  });

  it('a secondary whose handlers differ is refused by the primary: its writes end in UNAVAILABLE quoting why, nothing written', async () => {
    await member();
    const stranger = await member({ cluster: { role: 'secondary' }, timeoutMs: 300 }, false);
    const failure = await stranger.submit({ method: 'add', params: { key: 'x' } }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect((failure as Error).message).toContain('HANDLERS_MISMATCH');
    expect((failure as Error).message).toContain('only on the primary: submit:add');
    expect(rows('SELECT key FROM items')).toEqual([]);
  });

  it('a secondary with the wrong secret is refused (UNAUTHORIZED); the right one is served', async () => {
    await member({ cluster: { secret: 's3cret' } });
    const wrong = await member({ cluster: { secret: 'guess', role: 'secondary' }, timeoutMs: 300 });
    const right = await member({ cluster: { secret: 's3cret', role: 'secondary' } });
    const failure = await wrong.submit({ method: 'add', params: { key: 'w' } }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'UNAVAILABLE' });
    expect((failure as Error).message).toContain('UNAUTHORIZED');
    await expect(right.submit({ method: 'add', params: { key: 'r' } })).resolves.toEqual({ key: 'r' });
    expect(rows('SELECT key FROM items')).toEqual([{ key: 'r' }]);
  });

  it("role 'primary' fails to attach while another process-member holds the lock, naming the lock", async () => {
    await member();
    const dataSource = await openDataSource(file('app.db'));
    const coordinator = new Coordinator({ cluster: { role: 'primary' } });
    await expect(coordinator.attach(dataSource)).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: expect.stringContaining('app.db.primary-lock'),
    });
    // Given back untouched: plain TypeORM writes work, and the coordinator is not ready.
    expect(coordinator.isReady).toBe(false);
    await dataSource.getRepository(Item).insert({ key: 'plain', job: 0, step: 0 });
    await dataSource.destroy();
  });

  it('a lock path in a missing directory fails the attach naming it, before the DataSource is taken over', async () => {
    const dataSource = await openDataSource(file('app.db'));
    const coordinator = new Coordinator({ cluster: { lockPath: file('missing/dir/app.lock') } });
    await expect(coordinator.attach(dataSource)).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: expect.stringContaining('missing/dir'),
    });
    expect(coordinator.isReady).toBe(false);
    await dataSource.getRepository(Item).insert({ key: 'plain', job: 0, step: 0 }); // plain TypeORM, untouched
    await dataSource.destroy();
  });

  it('refuses the cluster option on an in-memory database', async () => {
    const dataSource = await new DataSource({
      type: 'better-sqlite3',
      database: ':memory:',
      entities: [Item],
      synchronize: true,
    }).initialize();
    const coordinator = new Coordinator({ cluster: {} });
    await expect(coordinator.attach(dataSource)).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: expect.stringContaining('cluster'),
    });
    await dataSource.destroy();
  });
});
