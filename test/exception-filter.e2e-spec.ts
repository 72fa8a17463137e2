import { Controller, Get, INestApplication, NotFoundException, Param, Post, Type } from '@nestjs/common';
import { APP_FILTER, HttpAdapterHost } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import request from 'supertest';
import {
  InjectWriteCoordinator,
  QueueFullError,
  WriteCoordinator,
  WriteCoordinatorError,
  WriteCoordinatorExceptionFilter,
  WriteCoordinatorModule,
  WriteErrorCode,
} from 'nestjs-sqlite-write-coordinator';
import { deferred } from './fixtures/deferred';
import { ItemHandlers } from './fixtures/item.handlers';
import { sqliteOptions, tempDir } from './fixtures/temp-sqlite';

/** The mapping the filter promises (docs/errors.md), written out here rather than read from the library. */
const EXPECTED: Record<WriteErrorCode, { status: number; retryAfter: boolean }> = {
  QUEUE_FULL: { status: 503, retryAfter: true },
  DRAINING: { status: 503, retryAfter: true },
  SHUTDOWN: { status: 503, retryAfter: true },
  COORDINATOR_NOT_READY: { status: 503, retryAfter: true },
  BUSY: { status: 503, retryAfter: true },
  CANCELLED: { status: 503, retryAfter: true },
  UNAVAILABLE: { status: 503, retryAfter: true },
  NOT_PRIMARY: { status: 503, retryAfter: true },
  TIMEOUT: { status: 504, retryAfter: false },
  REPLICATION_TIMEOUT: { status: 504, retryAfter: false },
  CONFLICT: { status: 409, retryAfter: false },
  INVALID_PARAMS: { status: 400, retryAfter: false },
  METHOD_NOT_FOUND: { status: 404, retryAfter: false },
  INVALID_OPTIONS: { status: 500, retryAfter: false },
  INTERNAL: { status: 500, retryAfter: false },
  WRITE_OUTSIDE_JOB: { status: 500, retryAfter: false },
  TRANSACTION_CONTROL: { status: 500, retryAfter: false },
};

/** Routes that fail the way a user's routes do: through the coordinator, with its real errors. */
@Controller()
class WritesController {
  /** Released by the test: the job of `POST /hold` runs until then. */
  static release = deferred();
  static started = deferred();

  constructor(@InjectWriteCoordinator() private readonly writes: WriteCoordinator) {}

  @Post('items/:key')
  add(@Param('key') key: string) {
    return this.writes.submit({ method: 'item.add', params: { key } });
  }

  @Post('malformed')
  malformed() {
    return this.writes.submit({ method: 'item.add', params: { key: 42 } });
  }

  @Post('unknown')
  unknown() {
    return this.writes.submit({ method: 'no.such.handler' });
  }

  @Post('hold')
  hold() {
    return this.writes.run(async () => {
      WritesController.started.resolve();
      await WritesController.release.promise;
      return 'released';
    });
  }

  @Post('slow')
  slow() {
    // Waits for its own deadline: the coordinator aborts the job's signal at 50 ms.
    return this.writes.run(
      (_manager, job) => new Promise((resolve) => job.signal.addEventListener('abort', () => resolve('late'))),
      { timeoutMs: 50 },
    );
  }

  @Post('raw-commit')
  rawCommit() {
    return this.writes.run((manager) => manager.query('COMMIT'));
  }

  @Get('not-found')
  notFound() {
    throw new NotFoundException('no such thing');
  }

  @Get('throw/:code')
  throwCode(@Param('code') code: WriteErrorCode) {
    throw new WriteCoordinatorError(code, `a ${code} error`, EXPECTED[code].retryAfter);
  }

  @Get('throw/:code/final')
  throwFinal(@Param('code') code: WriteErrorCode) {
    throw new WriteCoordinatorError(code, `a final ${code} error`, false);
  }
}

/** A real app on a real SQLite file; `register` installs the filter one of the two documented ways. */
async function boot(database: string, register: 'useGlobalFilters' | 'APP_FILTER'): Promise<INestApplication> {
  const providers: Array<Type | { provide: string; useClass: Type }> = [ItemHandlers];
  if (register === 'APP_FILTER') providers.push({ provide: APP_FILTER, useClass: WriteCoordinatorExceptionFilter });
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({ ...sqliteOptions(database), retryAttempts: 0 } as never),
      WriteCoordinatorModule.forRoot({ queueSize: 1, whenFull: 'reject' }),
    ],
    controllers: [WritesController],
    providers,
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  if (register === 'useGlobalFilters')
    app.useGlobalFilters(new WriteCoordinatorExceptionFilter(app.get(HttpAdapterHost)));
  await app.init();
  return app;
}

describe('WriteCoordinatorExceptionFilter (opt-in: coordinator errors to HTTP)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  afterEach(async () => {
    WritesController.release.resolve();
    await app?.close();
    tmp?.cleanup();
  });

  describe('when registered with app.useGlobalFilters(), on the errors the coordinator really raises', () => {
    beforeEach(async () => {
      tmp = tempDir();
      WritesController.release = deferred();
      WritesController.started = deferred();
      app = await boot(tmp.file('test.db'), 'useGlobalFilters');
    });

    it('answers 409 CONFLICT for a duplicate key, after the first write succeeded', async () => {
      await http().post('/items/a').expect(201);
      const response = await http().post('/items/a').expect(409);
      expect(response.body).toMatchObject({ statusCode: 409, code: 'CONFLICT', retryable: false });
      expect(response.headers['retry-after']).toBeUndefined();
    });

    it('answers 400 INVALID_PARAMS for params its handler refuses, and 404 METHOD_NOT_FOUND for no handler', async () => {
      const invalid = await http().post('/malformed').expect(400);
      expect(invalid.body).toMatchObject({ statusCode: 400, code: 'INVALID_PARAMS', retryable: false });
      const unknown = await http().post('/unknown').expect(404);
      expect(unknown.body).toMatchObject({ statusCode: 404, code: 'METHOD_NOT_FOUND', retryable: false });
    });

    it('answers 504 TIMEOUT for a job past its deadline', async () => {
      const response = await http().post('/slow').expect(504);
      expect(response.body).toMatchObject({ statusCode: 504, code: 'TIMEOUT', retryable: true });
      expect(response.headers['retry-after']).toBeUndefined();
    });

    it('answers 503 QUEUE_FULL with Retry-After: 1 when the queue is full under whenFull: reject', async () => {
      const running = http()
        .post('/hold')
        .then((r) => r);
      await WritesController.started.promise;
      const queued = http()
        .post('/items/queued')
        .then((r) => r);
      // The queue holds one job: poll the metrics (not the clock) until the second request is in it.
      const coordinator = app.get(WriteCoordinator);
      while (coordinator.metrics().queueDepth < 1) await new Promise((resolve) => setImmediate(resolve));

      const refused = await http().post('/items/refused').expect(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.body).toMatchObject({ statusCode: 503, code: 'QUEUE_FULL', retryable: true });

      WritesController.release.resolve();
      expect((await running).status).toBe(201);
      expect((await queued).status).toBe(201);
    });

    it('answers 503 SHUTDOWN with Retry-After: 1 once the coordinator has stopped', async () => {
      await app.get(WriteCoordinator).shutdown();
      const response = await http().post('/items/late').expect(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.body).toMatchObject({ statusCode: 503, code: 'SHUTDOWN', retryable: true });
    });

    it('answers 500 for TRANSACTION_CONTROL without the internal message', async () => {
      const response = await http().post('/raw-commit').expect(500);
      expect(response.body).toEqual({
        statusCode: 500,
        code: 'TRANSACTION_CONTROL',
        retryable: false,
        message: 'Internal server error',
      });
    });

    it('leaves every other error to Nest (an HttpException keeps its own status and body)', async () => {
      const response = await http().get('/not-found').expect(404);
      expect(response.body).toEqual({ statusCode: 404, message: 'no such thing', error: 'Not Found' });
    });
  });

  describe('when registered as an APP_FILTER provider, for every code', () => {
    beforeEach(async () => {
      tmp = tempDir();
      app = await boot(tmp.file('test.db'), 'APP_FILTER');
    });

    it.each(Object.entries(EXPECTED))('maps %s to %o', async (code, { status, retryAfter }) => {
      const response = await http().get(`/throw/${code}`).expect(status);
      expect(response.headers['retry-after']).toBe(retryAfter ? '1' : undefined);
      expect(response.body).toEqual({
        statusCode: status,
        code,
        retryable: retryAfter,
        message: status === 500 ? 'Internal server error' : `a ${code} error`,
      });
    });

    it('sends no Retry-After with a 503 whose error is not retryable', async () => {
      const response = await http().get('/throw/BUSY/final').expect(503);
      expect(response.headers['retry-after']).toBeUndefined();
      expect(response.body).toMatchObject({ code: 'BUSY', retryable: false });
    });
  });

  describe('outside HTTP (a microservice, a gateway or GraphQL, when registered with APP_FILTER)', () => {
    it.each(['rpc', 'ws', 'graphql'])(
      're-throws the error as it came in a %s context, writing no HTTP reply',
      (type) => {
        let replies = 0;
        const adapter = { reply: () => replies++, setHeader: () => replies++ };
        const filter = new WriteCoordinatorExceptionFilter({ httpAdapter: adapter } as unknown as HttpAdapterHost);
        const host = new ExecutionContextHost([{ pattern: 'transfer' }, {}]);
        host.setType(type);
        const error = new QueueFullError('the queue is full');
        expect(() => filter.catch(error, host)).toThrow(error);
        expect(replies).toBe(0);
      },
    );
  });
});
