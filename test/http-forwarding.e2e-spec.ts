import {
  Body,
  ConflictException,
  Controller,
  Get,
  Header,
  Inject,
  INestApplication,
  Post,
  Req,
  Res,
} from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR, HttpAdapterHost } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, Server, Socket } from 'node:net';
import request from 'supertest';
import { Repository } from 'typeorm';
import {
  ForwardingCoordinator,
  ForwardToPrimary,
  InvalidOptionsError,
  PrimaryForwardingInterceptor,
  PrimaryForwardingOptions,
  RunLocally,
  WRITE_COORDINATOR_FORWARDING_HEADERS as HEADERS,
  WriteCoordinator,
  WriteCoordinatorExceptionFilter,
  WriteCoordinatorModule,
  WriteCoordinatorOptions,
} from 'nestjs-sqlite-write-coordinator';
import { resolvePrimaryForwardingOptions } from '@app/write-coordinator/write-coordinator.forwarding.options';
import { until } from './fixtures/caller-outcome';
import { Item } from './fixtures/item.entity';
import { committedItems, sqliteOptions, tempDir } from './fixtures/temp-sqlite';
import { LiteFsStandIn } from './litefs-stand-in/stand-in';

const HOST = 'HOST_NAME';
const SECRET = 'forwarding-test-secret';

/**
 * What a test changes of a host's coordinator as the interceptor sees it (a primary's position, a
 * replica's wait, no primary known); the rest delegates to the real coordinator.
 */
interface Overrides {
  target?: ForwardingCoordinator['writeTarget'];
  position?: ForwardingCoordinator['replicationPosition'];
  wait?: ForwardingCoordinator['waitForPosition'];
}

function overridable(coordinator: WriteCoordinator, overrides: Overrides): ForwardingCoordinator {
  return {
    writeTarget: () => (overrides.target ?? (() => coordinator.writeTarget()))(),
    replicationPosition: () => (overrides.position ?? (() => coordinator.replicationPosition()))(),
    waitForPosition: (txid, timeoutMs, signal) =>
      (overrides.wait ?? ((t, ms, s) => coordinator.waitForPosition(t, ms, s)))(txid, timeoutMs, signal),
  };
}

/** Write routes as an app has them; each answer names the host that ran the handler. */
@Controller()
class ItemsController {
  constructor(
    @InjectRepository(Item) private readonly items: Repository<Item>,
    @Inject(HOST) private readonly host: string,
  ) {}

  @Post('items')
  @Header('x-route', 'items')
  async add(@Body() body: { key: string }, @Res({ passthrough: true }) res: ServerResponse) {
    const item = await this.items.save({ key: body.key, job: 0, step: 0 });
    res.setHeader('x-served-by', this.host);
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
    return { id: item.id, key: item.key, host: this.host };
  }

  @Get('items')
  async list() {
    return { host: this.host, keys: (await this.items.find()).map((item) => item.key) };
  }

  @Post('echo')
  echo(@Req() req: IncomingMessage & { body?: unknown }) {
    return {
      host: this.host,
      body: req.body,
      contentType: req.headers['content-type'],
      forwardedBy: req.headers[HEADERS.forwarded],
    };
  }

  @Post('upload')
  async upload(@Req() req: IncomingMessage) {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of req) {
      bytes += (chunk as Buffer).length;
      hash.update(chunk as Buffer);
    }
    return { host: this.host, bytes, sha256: hash.digest('hex') };
  }

  @Post('conflict')
  @Header('x-route', 'conflict')
  conflict(): never {
    throw new ConflictException({ statusCode: 409, message: `duplicate on ${this.host}` });
  }

  @Post('big')
  big() {
    return { host: this.host, data: 'x'.repeat(3_000_000) };
  }

  @Post('local-write')
  @RunLocally()
  async localWrite(@Body() body: { key: string }) {
    await this.items.save({ key: body.key, job: 0, step: 0 });
    return { host: this.host };
  }

  @Get('marked-read')
  @ForwardToPrimary()
  markedRead() {
    return { host: this.host };
  }
}

/** In `routes: 'marked'` mode: the controller is marked, one handler opts out. */
@Controller('marked')
@ForwardToPrimary()
class MarkedController {
  constructor(
    @InjectRepository(Item) private readonly items: Repository<Item>,
    @Inject(HOST) private readonly host: string,
  ) {}

  @Post('items')
  async add(@Body() body: { key: string }) {
    await this.items.save({ key: body.key, job: 0, step: 0 });
    return { host: this.host };
  }

  @Post('here')
  @RunLocally()
  here() {
    return { host: this.host };
  }
}

interface HostOptions {
  name: string;
  database: string;
  coordinator: WriteCoordinatorOptions;
  forwarding: PrimaryForwardingOptions;
  overrides: Overrides;
  rawBody?: boolean;
}

/** One host: a real Nest app (TypeORM on its own SQLite file, the coordinator, the interceptor) on a real port. */
async function startHost(
  options: HostOptions,
): Promise<{ app: INestApplication; url: string; coordinator: WriteCoordinator }> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({ ...sqliteOptions(options.database), retryAttempts: 0 } as never),
      TypeOrmModule.forFeature([Item]),
      WriteCoordinatorModule.forRoot(options.coordinator),
    ],
    controllers: [ItemsController, MarkedController],
    providers: [
      { provide: HOST, useValue: options.name },
      {
        provide: APP_INTERCEPTOR,
        inject: [WriteCoordinator],
        useFactory: (coordinator: WriteCoordinator) =>
          new PrimaryForwardingInterceptor(overridable(coordinator, options.overrides), options.forwarding),
      },
      {
        provide: APP_FILTER,
        inject: [HttpAdapterHost],
        useFactory: (adapterHost: HttpAdapterHost) => new WriteCoordinatorExceptionFilter(adapterHost),
      },
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false, rawBody: options.rawBody ?? false });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl(), coordinator: app.get(WriteCoordinator) };
}

/** A free TCP port on 127.0.0.1 (for the cluster's own forwarding endpoint on the primary). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Each host's port for the coordinator's own forwarding between hosts (`submit()`), by hostname. */
async function clusterPorts(names: readonly string[]): Promise<Record<string, number>> {
  const ports: Record<string, number> = {};
  for (const name of names) ports[name] = await freePort();
  return ports;
}

/**
 * `cluster` options of a host on the LiteFS stand-in (test/litefs-stand-in: its mount, `.primary`,
 * `-pos` and event stream), whose primary is node-a. The apps run in this process, without the
 * stand-in's agent: their writes do not advance `-pos` and the stand-in replicates nothing, so every
 * host keeps its own rows and the primary's position stays at its first TXID.
 */
function litefsCluster(standIn: LiteFsStandIn, name: string, ports: Record<string, number>): WriteCoordinatorOptions {
  const node = standIn.node(name);
  return {
    cluster: {
      secret: SECRET,
      primary: { strategy: 'litefs', mountDir: node.mountDir, eventsUrl: node.eventsUrl },
      http: {
        host: '127.0.0.1',
        port: ports[name],
        url: (hostname) => `http://127.0.0.1:${ports[hostname]}/_write-coordinator`,
      },
    },
  };
}

const keysIn = async (database: string) => (await committedItems(database)).map((item) => item.key);

describe('PrimaryForwardingInterceptor', () => {
  describe('options', () => {
    const coordinator: ForwardingCoordinator = {
      writeTarget: () => ({ here: true }),
      replicationPosition: () => undefined,
      waitForPosition: () => Promise.resolve(true),
    };
    const refused: [string, unknown, string][] = [
      ['routes', 'all', "routes must be 'writes' or 'marked' (received 'all', string)"],
      ['url', 'http://x', 'url must be a function (hostname) => base URL string'],
      ['port', 0, 'port must be a port, 1 to 65535 (received 0, number)'],
      ['timeoutMs', 0, 'timeoutMs must be an integer number of ms from 1 to'],
      ['timeoutMs', 2.5, 'timeoutMs must be an integer number of ms from 1 to'],
      ['readYourWritesMs', true, 'readYourWritesMs must be false or an integer number of ms'],
      ['readYourWritesMs', -1, 'readYourWritesMs must be false or an integer number of ms'],
      ['hostname', '', 'hostname must be a non-empty hostname'],
      ['routse', 'marked', 'routse must be one of the known options (routes, url, port, timeoutMs'],
    ];
    it.each(refused)(
      'refuses %s = %p at construction, naming field, expectation and value',
      (field, value, message) => {
        const build = () =>
          new PrimaryForwardingInterceptor(coordinator, { [field]: value } as PrimaryForwardingOptions);
        expect(build).toThrow(InvalidOptionsError);
        expect(build).toThrow(message);
        try {
          build();
        } catch (error) {
          expect((error as InvalidOptionsError).field).toBe(field);
          expect((error as InvalidOptionsError).code).toBe('INVALID_OPTIONS');
        }
      },
    );

    it('refuses url and port together', () => {
      expect(() => new PrimaryForwardingInterceptor(coordinator, { url: (h) => `http://${h}`, port: 80 })).toThrow(
        'port must be absent when url is given',
      );
    });

    it("builds the primary's URL from url, else port, else the port the request came in on", () => {
      expect(resolvePrimaryForwardingOptions({ url: (h) => `https://${h}.internal/app` }).baseUrl('a', 3000)).toBe(
        'https://a.internal/app',
      );
      expect(resolvePrimaryForwardingOptions({ port: 8080 }).baseUrl('a', 3000)).toBe('http://a:8080');
      expect(resolvePrimaryForwardingOptions({}).baseUrl('a', 3000)).toBe('http://a:3000');
      expect(() => resolvePrimaryForwardingOptions({ url: () => 'a:3000' }).baseUrl('a', 3000)).toThrow(
        "url('a') must be an http(s) URL string (received 'a:3000', string)",
      );
    });

    it('accepts every option at once', () => {
      expect(
        () =>
          new PrimaryForwardingInterceptor(coordinator, {
            routes: 'marked',
            port: 3000,
            timeoutMs: 1000,
            readYourWritesMs: false,
            hostname: 'node-b',
          }),
      ).not.toThrow();
    });
  });

  describe('between hosts (LiteFS stand-in: node-a is the primary)', () => {
    let tmp: ReturnType<typeof tempDir>;
    let standIn: LiteFsStandIn;
    /** The apps' URLs by hostname: what the interceptors' `url` option reads. */
    const urls = new Map<string, string>();
    const overrides: Record<string, Overrides> = { 'node-a': {}, 'node-b': {}, 'node-c': {} };
    const hosts: Record<string, Awaited<ReturnType<typeof startHost>>> = {};
    const db = (name: string) => standIn.node(name).databasePath;

    beforeAll(async () => {
      tmp = tempDir();
      standIn = await LiteFsStandIn.start({ root: tmp.dir, nodes: ['node-a', 'node-b', 'node-c'], primary: 'node-a' });
      const ports = await clusterPorts(['node-a', 'node-b', 'node-c']);
      for (const [name, rawBody] of [
        ['node-a', false],
        ['node-b', false],
        ['node-c', true],
      ] as const) {
        hosts[name] = await startHost({
          name,
          database: db(name),
          coordinator: litefsCluster(standIn, name, ports),
          forwarding: {
            url: (hostname) => urls.get(hostname) ?? 'http://127.0.0.1:1',
            hostname: name,
            // node-c also shows the timeouts: a fake primary that never answers, a position never reached.
            ...(name === 'node-c' ? { timeoutMs: 2_000, readYourWritesMs: 300 } : {}),
          },
          overrides: overrides[name],
          rawBody,
        });
        urls.set(name, hosts[name].url);
      }
      for (const name of ['node-b', 'node-c']) {
        await until(
          `${name} to see node-a as the primary`,
          () => overridable(hosts[name].coordinator, overrides[name]).writeTarget().here === false,
        );
      }
    });
    afterAll(async () => {
      for (const name of ['node-c', 'node-b', 'node-a']) await hosts[name]?.app.close();
      await standIn?.stop();
      tmp.cleanup();
    });
    afterEach(() => {
      for (const name of Object.keys(overrides)) {
        delete overrides[name].position;
        delete overrides[name].wait;
      }
      urls.set('node-a', hosts['node-a'].url);
    });

    it('answers a POST on a replica with the primary handler: row written once, in the primary file only', async () => {
      const answer = await request(urls.get('node-b')!).post('/items').send({ key: 'k1' }).expect(201);
      expect(answer.body).toEqual({ id: 1, key: 'k1', host: 'node-a' });
      expect(answer.headers['x-served-by']).toBe('node-a');
      expect(answer.headers['x-route']).toBe('items');
      expect(answer.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(await keysIn(db('node-a'))).toEqual(['k1']);
      expect(await keysIn(db('node-b'))).toEqual([]);
    });

    it('keeps GET local (and forwards a GET marked @ForwardToPrimary)', async () => {
      expect((await request(urls.get('node-b')!).get('/items').expect(200)).body.host).toBe('node-b');
      expect((await request(urls.get('node-b')!).get('/marked-read').expect(200)).body).toEqual({ host: 'node-a' });
    });

    it('runs a @RunLocally route here, where a local write fails with NOT_PRIMARY', async () => {
      const answer = await request(urls.get('node-b')!).post('/local-write').send({ key: 'local' }).expect(503);
      expect(answer.body).toMatchObject({ code: 'NOT_PRIMARY', retryable: true, primary: 'node-a' });
      expect(await keysIn(db('node-a'))).not.toContain('local');
    });

    it("streams back the primary's error status, headers and body", async () => {
      const answer = await request(urls.get('node-b')!).post('/conflict').expect(409);
      expect(answer.body).toEqual({ statusCode: 409, message: 'duplicate on node-a' });
      expect(answer.headers['x-route']).toBe('conflict');
    });

    it('streams a large answer and a large unparsed request body through', async () => {
      const big = await request(urls.get('node-b')!).post('/big').expect(201);
      expect(big.body.host).toBe('node-a');
      expect(big.body.data).toHaveLength(3_000_000);
      const payload = Buffer.alloc(8 * 1024 * 1024, 7);
      const upload = await request(urls.get('node-b')!)
        .post('/upload')
        .set('content-type', 'application/octet-stream')
        .send(payload)
        .expect(201);
      expect(upload.body).toEqual({
        host: 'node-a',
        bytes: payload.length,
        sha256: createHash('sha256').update(payload).digest('hex'),
      });
    });

    it('re-encodes parsed JSON and urlencoded bodies (no rawBody), and sends the raw bytes with rawBody', async () => {
      const json = await request(urls.get('node-b')!)
        .post('/echo')
        .send({ a: [1, { b: 'é' }], n: null })
        .expect(201);
      expect(json.body).toEqual({
        host: 'node-a',
        body: { a: [1, { b: 'é' }], n: null },
        contentType: 'application/json; charset=utf-8',
        forwardedBy: 'node-b',
      });
      const form = await request(urls.get('node-b')!)
        .post('/echo')
        .type('form')
        .send('user[name]=ann&tags=x&tags=y&list[0][k]=v')
        .expect(201);
      expect(form.body.body).toEqual({ user: { name: 'ann' }, tags: ['x', 'y'], list: [{ k: 'v' }] });
      const raw = await request(urls.get('node-c')!)
        .post('/echo')
        .set('content-type', 'application/json; charset=utf-8')
        .send('{"spaced" :  1}')
        .expect(201);
      expect(raw.body).toMatchObject({ host: 'node-a', body: { spaced: 1 }, forwardedBy: 'node-c' });
    });

    it('never forwards twice: a forwarded request reaching a replica is answered 503 NOT_PRIMARY', async () => {
      const answer = await request(urls.get('node-b')!)
        .post('/items')
        .set(HEADERS.forwarded, 'node-c')
        .send({ key: 'looped' })
        .expect(503);
      expect(answer.headers['retry-after']).toBe('1');
      expect(answer.body).toMatchObject({ statusCode: 503, code: 'NOT_PRIMARY', retryable: true, primary: 'node-a' });
      // node-c believes node-b is the primary: node-b refuses what node-c forwards, node-c passes that on.
      urls.set('node-a', urls.get('node-b')!);
      const misrouted = await request(urls.get('node-c')!).post('/items').send({ key: 'looped' }).expect(503);
      expect(misrouted.body).toMatchObject({ code: 'NOT_PRIMARY', primary: 'node-a' });
      for (const name of ['node-a', 'node-b', 'node-c']) expect(await keysIn(db(name))).not.toContain('looped');
    });

    it('answers 503 NOT_PRIMARY with Retry-After when no primary is known', async () => {
      const previous = overrides['node-b'].target;
      overrides['node-b'].target = () => ({ here: false });
      try {
        const answer = await request(urls.get('node-b')!).post('/items').send({ key: 'nobody' }).expect(503);
        expect(answer.headers['retry-after']).toBe('1');
        expect(answer.body).toMatchObject({ code: 'NOT_PRIMARY', retryable: true });
        expect(answer.body.primary).toBeUndefined();
      } finally {
        overrides['node-b'].target = previous;
      }
      expect(await keysIn(db('node-a'))).not.toContain('nobody');
    });

    describe('read your writes', () => {
      it("the primary's answer carries its LiteFS position; a replica already there answers at once", async () => {
        const answer = await request(urls.get('node-b')!).post('/items').send({ key: 'ryw-1' }).expect(201);
        expect(answer.headers[HEADERS.txid]).toBe(String(standIn.position('node-a').txID));
        expect(answer.headers[HEADERS.stale]).toBeUndefined();
        expect((await request(urls.get('node-a')!).get('/items').expect(200)).headers[HEADERS.txid]).toBeUndefined();
      });

      it('the replica waits for the TXID the primary answered, up to readYourWritesMs', async () => {
        overrides['node-a'].position = () => 42;
        const waits: [number, number][] = [];
        overrides['node-b'].wait = (txid, timeoutMs) => {
          waits.push([txid, timeoutMs]);
          return Promise.resolve(true);
        };
        const answer = await request(urls.get('node-b')!).post('/items').send({ key: 'ryw-2' }).expect(201);
        expect(answer.headers[HEADERS.txid]).toBe('42');
        expect(answer.headers[HEADERS.stale]).toBeUndefined();
        expect(waits).toEqual([[42, 5000]]);
      });

      it('past readYourWritesMs the answer goes out anyway, marked stale (an error status too)', async () => {
        const ahead = standIn.position('node-a').txID + 1_000_000;
        overrides['node-a'].position = () => ahead;
        const answer = await request(urls.get('node-c')!).post('/conflict').expect(409);
        expect(answer.headers[HEADERS.txid]).toBe(String(ahead));
        expect(answer.headers[HEADERS.stale]).toBe('1');
        expect(answer.body).toEqual({ statusCode: 409, message: 'duplicate on node-a' });
      });
    });

    describe('when the primary does not answer', () => {
      let fake: Server | undefined;
      const sockets = new Set<Socket>();
      afterEach(async () => {
        for (const socket of sockets) socket.destroy();
        sockets.clear();
        if (fake) await new Promise<void>((resolve) => fake!.close(() => resolve()));
        fake = undefined;
      });
      /** A TCP server standing in for the primary's app; `onData` decides what it does with a request. */
      async function fakePrimary(onData: (socket: Socket) => void): Promise<string> {
        fake = createServer((socket) => {
          sockets.add(socket);
          socket.once('data', () => onData(socket));
        });
        await new Promise<void>((resolve) => fake!.listen(0, '127.0.0.1', resolve));
        return `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
      }

      it('connection refused: 503 UNAVAILABLE, retryable (the write did not run)', async () => {
        urls.set('node-a', `http://127.0.0.1:${await freePort()}`);
        const answer = await request(urls.get('node-b')!).post('/items').send({ key: 'refused' }).expect(503);
        expect(answer.headers['retry-after']).toBe('1');
        expect(answer.body).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
      });

      it('connection lost after the request went out: 502 UNAVAILABLE, not retryable (it may have run)', async () => {
        urls.set('node-a', await fakePrimary((socket) => socket.destroy()));
        const answer = await request(urls.get('node-b')!).post('/items').send({ key: 'lost' }).expect(502);
        expect(answer.headers['retry-after']).toBeUndefined();
        expect(answer.body).toMatchObject({ code: 'UNAVAILABLE', retryable: false });
      });

      it('no answer within timeoutMs: 504 TIMEOUT, not retryable', async () => {
        urls.set('node-a', await fakePrimary(() => undefined));
        const answer = await request(urls.get('node-c')!).post('/items').send({ key: 'late' }).expect(504);
        expect(answer.body).toMatchObject({ code: 'TIMEOUT', retryable: false });
      });
    });
  });

  describe("with routes: 'marked'", () => {
    let tmp: ReturnType<typeof tempDir>;
    let standIn: LiteFsStandIn;
    const urls = new Map<string, string>();
    const hosts: Record<string, Awaited<ReturnType<typeof startHost>>> = {};
    const overrides: Record<string, Overrides> = { 'node-a': {}, 'node-b': {} };

    beforeAll(async () => {
      tmp = tempDir();
      standIn = await LiteFsStandIn.start({ root: tmp.dir, nodes: ['node-a', 'node-b'], primary: 'node-a' });
      const ports = await clusterPorts(['node-a', 'node-b']);
      for (const name of ['node-a', 'node-b']) {
        hosts[name] = await startHost({
          name,
          database: standIn.node(name).databasePath,
          coordinator: litefsCluster(standIn, name, ports),
          forwarding: { routes: 'marked', url: (hostname) => urls.get(hostname) ?? 'http://127.0.0.1:1' },
          overrides: overrides[name],
        });
        urls.set(name, hosts[name].url);
      }
      await until(
        'node-b to see node-a as the primary',
        () => overridable(hosts['node-b'].coordinator, overrides['node-b']).writeTarget().here === false,
      );
    });
    afterAll(async () => {
      for (const name of ['node-b', 'node-a']) await hosts[name]?.app.close();
      await standIn?.stop();
      tmp.cleanup();
    });

    it('forwards only the marked routes, whatever their method; @RunLocally wins over its controller', async () => {
      const replica = urls.get('node-b')!;
      expect((await request(replica).post('/echo').send({}).expect(201)).body.host).toBe('node-b');
      expect((await request(replica).post('/marked/items').send({ key: 'm1' }).expect(201)).body).toEqual({
        host: 'node-a',
      });
      expect((await request(replica).post('/marked/here').expect(201)).body).toEqual({ host: 'node-b' });
      expect((await request(replica).get('/marked-read').expect(200)).body).toEqual({ host: 'node-a' });
      expect(await keysIn(standIn.node('node-a').databasePath)).toEqual(['m1']);
      expect(await keysIn(standIn.node('node-b').databasePath)).toEqual([]);
    });
  });

  describe('on a single host (no cluster)', () => {
    let tmp: ReturnType<typeof tempDir>;
    let host: Awaited<ReturnType<typeof startHost>>;
    beforeAll(async () => {
      tmp = tempDir();
      host = await startHost({
        name: 'solo',
        database: tmp.file('solo.db'),
        coordinator: {},
        forwarding: { url: () => 'http://127.0.0.1:1' },
        overrides: {},
      });
    });
    afterAll(async () => {
      await host.app.close();
      tmp.cleanup();
    });

    it('runs every request here, as without it (no TXID header: no replication position)', async () => {
      const answer = await request(host.url).post('/items').send({ key: 'solo-1' }).expect(201);
      expect(answer.body).toEqual({ id: 1, key: 'solo-1', host: 'solo' });
      expect(answer.headers['x-route']).toBe('items');
      expect(answer.headers[HEADERS.txid]).toBeUndefined();
      await request(host.url).post('/conflict').expect(409);
      expect((await request(host.url).get('/items').expect(200)).body).toEqual({ host: 'solo', keys: ['solo-1'] });
      expect(await keysIn(tmp.file('solo.db'))).toEqual(['solo-1']);
    });
  });
});
