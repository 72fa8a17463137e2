import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { WriteCoordinator } from '@app/write-coordinator';
import { createDemoApp } from './fixtures/demo-app';
import { tempDir } from './fixtures/temp-sqlite';

describe('ledger demo over HTTP', () => {
  let tmp: ReturnType<typeof tempDir>;
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  beforeEach(async () => {
    tmp = tempDir();
    app = await createDemoApp(tmp.file('nested/ledger.db'));
  });
  afterEach(async () => {
    await app.close();
    tmp.cleanup();
  });

  const openAccounts = async (count: number, initialBalance: number) => {
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const res = await http()
        .post('/accounts')
        .send({ name: `acc-${i}`, initialBalance })
        .expect(201);
      ids.push(res.body.id);
    }
    return ids;
  };

  it('runs 200 concurrent transfers: all succeed and the total balance is conserved', async () => {
    const ids = await openAccounts(10, 10_000);
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        // The receiver is 1 to 9 places after the sender: never the same account.
        http()
          .post('/transfers')
          .send({ fromId: ids[i % 10], toId: ids[(i + 1 + (i % 9)) % 10], amount: 1 + (i % 50) }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(201));
    const totals = await http().get('/totals').expect(200);
    expect(totals.body).toEqual({ accounts: 10, transfers: 200, totalBalance: 100_000 });
    const accounts = await http().get('/accounts').expect(200);
    expect(accounts.body.every((a: { balance: number }) => a.balance >= 0)).toBe(true);
    const metrics = await http().get('/metrics').expect(200);
    expect(metrics.body).toMatchObject({ accepted: 210, completed: 210, failed: 0 });
  });

  it('serialises a plain repository write (PATCH /accounts/:id, no decorator) among concurrent transfers', async () => {
    const ids = await openAccounts(10, 10_000);
    const responses = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        i % 6 === 0
          ? http()
              .patch(`/accounts/${ids[i % 10]}`)
              .send({ name: `renamed-${i}` })
          : http()
              .post('/transfers')
              .send({ fromId: ids[i % 10], toId: ids[(i + 1 + (i % 9)) % 10], amount: 1 + (i % 50) }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 120 }, (_, i) => (i % 6 === 0 ? 200 : 201)));
    const totals = await http().get('/totals').expect(200);
    expect(totals.body).toEqual({ accounts: 10, transfers: 100, totalBalance: 100_000 });
    const names = (await http().get('/accounts').expect(200)).body.map((a: { name: string }) => a.name);
    expect(names.filter((n: string) => n.startsWith('renamed-'))).toHaveLength(5); // 20 renames of 5 accounts
    const metrics = await http().get('/metrics').expect(200);
    expect(metrics.body).toMatchObject({ accepted: 130, completed: 130, failed: 0 });
    await http().patch(`/accounts/${ids[1]}`).send({ name: names[0] }).expect(409);
    await http().patch('/accounts/999').send({ name: 'nobody' }).expect(404);
    await http().patch(`/accounts/${ids[1]}`).send({ name: '' }).expect(400);
    expect((await http().get(`/accounts/${ids[1]}`).expect(200)).body.name).toBe(names[1]);
  });

  it('answers malformed input with 400 and writes nothing', async () => {
    const ids = await openAccounts(2, 100);
    const bad = [
      {},
      { fromId: ids[0], toId: ids[1] },
      { fromId: ids[0], toId: ids[1], amount: -5 },
      { fromId: ids[0], toId: ids[1], amount: 1.5 },
      { fromId: 'one', toId: ids[1], amount: 5 },
      { fromId: ids[0], toId: ids[1], amount: 5, extra: true },
      { fromId: ids[0], toId: ids[0], amount: 5 },
    ];
    for (const body of bad) await http().post('/transfers').send(body).expect(400);
    await http().post('/accounts').send({ name: '', initialBalance: 1 }).expect(400);
    expect((await http().get('/totals')).body).toEqual({ accounts: 2, transfers: 0, totalBalance: 200 });
  });

  it('rolls back a refused transfer (409 CONFLICT) and a transfer to a missing account (400 INVALID_PARAMS)', async () => {
    const ids = await openAccounts(2, 100);
    const refused = await http().post('/transfers').send({ fromId: ids[0], toId: ids[1], amount: 101 }).expect(409);
    expect(refused.body).toMatchObject({ code: 'CONFLICT', retryable: false });
    const missing = await http().post('/transfers').send({ fromId: ids[0], toId: 999, amount: 1 }).expect(400);
    expect(missing.body).toMatchObject({ code: 'INVALID_PARAMS', message: expect.stringContaining('account 999') });
    await http().post('/accounts').send({ name: 'acc-0', initialBalance: 1 }).expect(409);
    expect((await http().get('/totals')).body).toEqual({ accounts: 2, transfers: 0, totalBalance: 200 });
    expect((await http().get(`/accounts/${ids[0]}`)).body.balance).toBe(100);
  });

  it('reports ready on /health, and 503 once the coordinator is stopped', async () => {
    const up = await http().get('/health').expect(200);
    expect(up.body.details).toMatchObject({ writeCoordinator: { status: 'up' }, database: { status: 'up' } });
    await app.get(WriteCoordinator).shutdown();
    const down = await http().get('/health').expect(503);
    expect(down.body.details.writeCoordinator).toMatchObject({ status: 'down', state: 'stopped' });
    const refused = await http().post('/accounts').send({ name: 'late', initialBalance: 1 }).expect(503);
    expect(refused.body).toMatchObject({ code: 'SHUTDOWN', retryable: true });
    expect(refused.headers['retry-after']).toBe('1');
  });
});
