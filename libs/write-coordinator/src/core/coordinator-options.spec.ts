import { InvalidOptionsError } from '../errors';
import { resolveWriteCoordinatorOptions, WRITE_COORDINATOR_DEFAULTS } from './coordinator-options';

/** Every option with wrong types and ranges: [field, options, expected message]. */
const INVALID: Array<[string, Record<string, unknown>, string]> = [
  ['queueSize', { queueSize: 2.5 }, 'queueSize must be an integer (received 2.5, number)'],
  ['queueSize', { queueSize: Number.NaN }, 'queueSize must be an integer (received NaN, number)'],
  ['queueSize', { queueSize: Infinity }, 'queueSize must be an integer (received Infinity, number)'],
  ['queueSize', { queueSize: '10' }, "queueSize must be an integer (received '10', string)"],
  ['whenFull', { whenFull: 'drop' }, "whenFull must be 'wait' or 'reject' (received 'drop', string)"],
  ['timeoutMs', { timeoutMs: 0 }, 'timeoutMs must be a finite number of ms greater than 0 (received 0, number)'],
  ['timeoutMs', { timeoutMs: -5 }, 'timeoutMs must be a finite number of ms greater than 0 (received -5, number)'],
  [
    'timeoutMs',
    { timeoutMs: Infinity },
    'timeoutMs must be a finite number of ms greater than 0 (received Infinity, number)',
  ],
  ['name', { name: '' }, "name must be a non-empty string (received '', string)"],
  ['name', { name: 7 }, 'name must be a non-empty string (received 7, number)'],
  [
    'dataSource',
    { dataSource: {} },
    'dataSource must be a TypeORM DataSource or the non-empty name it was registered under (received object)',
  ],
  ['isGlobal', { isGlobal: 'yes' }, "isGlobal must be a boolean (received 'yes', string)"],
  [
    'shutdownGraceMs',
    { shutdownGraceMs: -1 },
    'shutdownGraceMs must be a finite number of ms, 0 or more (received -1, number)',
  ],
  [
    'readinessDelayMs',
    { readinessDelayMs: -1 },
    'readinessDelayMs must be a finite number of ms, 0 or more (received -1, number)',
  ],
  [
    'readinessDelayMs',
    { readinessDelayMs: Infinity },
    'readinessDelayMs must be a finite number of ms, 0 or more (received Infinity, number)',
  ],
  ['gracefulHttpShutdown', { gracefulHttpShutdown: 0 }, 'gracefulHttpShutdown must be a boolean (received 0, number)'],
  ['publisher', { publisher: {} }, 'publisher must be an object with a publish(change) method (received object)'],
  [
    'writesOutsideJobs',
    { writesOutsideJobs: 'ignore' },
    "writesOutsideJobs must be 'serialize', 'warn', 'throw' or 'off' (received 'ignore', string)",
  ],
  ['readIsolation', { readIsolation: 1 }, 'readIsolation must be a boolean (received 1, number)'],
  [
    'synchronous',
    { synchronous: 'full' },
    "synchronous must be 'OFF', 'NORMAL', 'FULL' or 'EXTRA' (received 'full', string)",
  ],
  ['foreignKeys', { foreignKeys: 'on' }, "foreignKeys must be a boolean (received 'on', string)"],
  ['busyTimeoutMs', { busyTimeoutMs: 2.5 }, 'busyTimeoutMs must be an integer, 0 or more (received 2.5, number)'],
  ['busyTimeoutMs', { busyTimeoutMs: -1 }, 'busyTimeoutMs must be an integer, 0 or more (received -1, number)'],
  [
    'busyBudgetMs',
    { busyBudgetMs: Number.NaN },
    'busyBudgetMs must be a finite number of ms, 0 or more (received NaN, number)',
  ],
  ['topics', { topics: 'x' }, 'topics must be a function (method) => topic, or an object mapping'],
  ['topics', { topics: { A: 1 } }, 'topics must be a function (method) => topic, or an object mapping'],
  ['maxPayloadBytes', { maxPayloadBytes: 0 }, 'maxPayloadBytes must be an integer number of bytes, 1 or more'],
  ['maxPayloadBytes', { maxPayloadBytes: '1mb' }, "must be an integer number of bytes, 1 or more (received '1mb'"],
  ['maxBatchSize', { maxBatchSize: 0 }, 'maxBatchSize must be an integer, 1 or more (received 0, number)'],
  ['maxBatchSize', { maxBatchSize: 1.5 }, 'maxBatchSize must be an integer, 1 or more (received 1.5, number)'],
  ['batchWaitMs', { batchWaitMs: -1 }, 'batchWaitMs must be a finite number of ms, 0 or more (received -1, number)'],
  [
    'batchYield',
    { batchYield: 'sometimes' },
    "batchYield must be 'auto', 'always' or 'never' (received 'sometimes', string)",
  ],
  ['instrumentation', { instrumentation: {} }, 'instrumentation must be an array of instrumentations (objects with an'],
  [
    'instrumentation',
    { instrumentation: [{}] },
    'instrumentation must be an array of instrumentations (objects with an',
  ],
  ['queSize', { queSize: 5 }, 'queSize must be one of the known options'],
  [
    'walCheckpoint',
    { walCheckpoint: true },
    'walCheckpoint must be false or an object { idleMs?, maxWalBytes?, waitMs? } (received true, boolean)',
  ],
  [
    'walCheckpoint.idleMs',
    { walCheckpoint: { idleMs: 0 } },
    'walCheckpoint.idleMs must be a finite number of ms greater than 0, or false (received 0, number)',
  ],
  [
    'walCheckpoint.maxWalBytes',
    { walCheckpoint: { maxWalBytes: '64mb' } },
    "walCheckpoint.maxWalBytes must be an integer number of bytes, 1 or more, or false (received '64mb', string)",
  ],
  [
    'walCheckpoint.waitMs',
    { walCheckpoint: { waitMs: -1 } },
    'walCheckpoint.waitMs must be a finite number of ms, 0 or more (received -1, number)',
  ],
  [
    'cluster',
    { cluster: true },
    'cluster must be an object { role?, socketPath?, secret?, … } (absent: no cluster) (received true, boolean)',
  ],
  [
    'cluster.secret',
    { cluster: { secret: 'pässword', primary: { strategy: 'litefs' } } },
    "cluster.secret must be printable ASCII without spaces at either end (it travels in an HTTP Authorization header) (received 'pässword', string)",
  ],
  [
    'cluster.role',
    { cluster: { role: 'leader' } },
    "cluster.role must be 'auto', 'primary' or 'secondary' (received 'leader', string)",
  ],
  [
    'cluster.retryMs',
    { cluster: { retryMs: 0 } },
    'cluster.retryMs must be a finite number of ms greater than 0 (received 0, number)',
  ],
  ['cluster.secret', { cluster: { secret: '' } }, "cluster.secret must be a non-empty string (received '', string)"],
  [
    'cluster.requestsTable',
    { cluster: { requestsTable: 'x; DROP TABLE y' } },
    "cluster.requestsTable must be a table name (letters, digits and _, not starting with a digit) (received 'x; DROP TABLE y', string)",
  ],
  [
    'cluster.heartbeat',
    { cluster: { heartbeat: 100 } },
    'cluster.heartbeat must be one of the known options (role, socketPath, lockPath, secret, heartbeatMs, retryMs, forwardTimeoutMs, dedupeWindowMs, pruneIntervalMs, handshakeTimeoutMs, requestsTable, primary, http, readYourWritesMs) (received 100, number)',
  ],
  [
    'cluster.primary',
    { cluster: { primary: { strategy: 'raft' } } },
    "cluster.primary must be an object { strategy: 'lock' | 'litefs' | 'static', … } (received object)",
  ],
  [
    'cluster.primary.eventsUrl',
    { cluster: { secret: 's', primary: { strategy: 'litefs', eventsUrl: 'localhost:20202' } } },
    "cluster.primary.eventsUrl must be an http: URL (LiteFS serves it on localhost), or false (received 'localhost:20202', string)",
  ],
  [
    'cluster.primary.primary',
    { cluster: { secret: 's', primary: { strategy: 'static' } } },
    'cluster.primary.primary must be a value (required) (received undefined)',
  ],
  [
    'cluster.primary.mountDir',
    { cluster: { secret: 's', primary: { strategy: 'static', primary: 'a', mountDir: '/litefs' } } },
    "cluster.primary.mountDir must be one of the known options (strategy, primary, hostname) (received '/litefs', string)",
  ],
  [
    'cluster.secret',
    { cluster: { primary: { strategy: 'litefs' } } },
    "cluster.secret must be a shared secret (the 'litefs' strategy forwards writes between hosts over HTTP) (received undefined)",
  ],
  [
    'cluster.role',
    { cluster: { secret: 's', role: 'primary', primary: { strategy: 'static', primary: 'a' } } },
    "cluster.role must be 'auto' (the 'static' strategy decides the primary) (received 'primary', string)",
  ],
  [
    'cluster.http.port',
    { cluster: { http: { port: 70000 } } },
    'cluster.http.port must be an integer port in [0, 65535] (received 70000, number)',
  ],
  [
    'cluster.http.path',
    { cluster: { http: { path: 'write' } } },
    "cluster.http.path must be a URL path starting with '/' (received 'write', string)",
  ],
  [
    'cluster.http.tls.cert',
    { cluster: { http: { tls: { key: 'k' } } } },
    'cluster.http.tls.cert must be a value (required) (received undefined)',
  ],
  [
    'cluster.readYourWritesMs',
    { cluster: { readYourWritesMs: 0 } },
    'cluster.readYourWritesMs must be a finite number of ms greater than 0, or false (received 0, number)',
  ],
  [
    'walCheckpoint.idle',
    { walCheckpoint: { idle: true } },
    'walCheckpoint.idle must be one of the known options (idleMs, maxWalBytes, waitMs) (received true, boolean)',
  ],
];

describe('resolveWriteCoordinatorOptions', () => {
  it('fills every default', () => {
    expect(resolveWriteCoordinatorOptions()).toEqual(WRITE_COORDINATOR_DEFAULTS);
    expect(resolveWriteCoordinatorOptions({})).toEqual(WRITE_COORDINATOR_DEFAULTS);
  });

  it.each([0, -1, -256])('treats queueSize %p (<= 0) as 256, as the seed does', (queueSize) => {
    expect(resolveWriteCoordinatorOptions({ queueSize }).queueSize).toBe(256);
  });

  it('keeps valid values', () => {
    const valid = {
      name: 'audit',
      dataSource: 'audit',
      queueSize: 8,
      whenFull: 'reject',
      timeoutMs: 50,
      isGlobal: true,
      shutdownGraceMs: 0,
      readinessDelayMs: 0,
      gracefulHttpShutdown: false,
      writesOutsideJobs: 'throw',
      readIsolation: false,
      synchronous: 'NORMAL',
      foreignKeys: false,
      busyTimeoutMs: 0,
      busyBudgetMs: 0,
      topics: { CreateSession: 'sessions' },
    } as const;
    expect(resolveWriteCoordinatorOptions(valid)).toMatchObject(valid);
  });

  it('fills the fields of walCheckpoint left out, and keeps false', () => {
    expect(resolveWriteCoordinatorOptions({ walCheckpoint: { maxWalBytes: 1024 } }).walCheckpoint).toEqual({
      idleMs: 100,
      maxWalBytes: 1024,
      waitMs: 1000,
    });
    expect(resolveWriteCoordinatorOptions({ walCheckpoint: { idleMs: false } }).walCheckpoint).toMatchObject({
      idleMs: false,
    });
    expect(resolveWriteCoordinatorOptions({ walCheckpoint: false }).walCheckpoint).toBe(false);
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(resolveWriteCoordinatorOptions({ queueSize: 3 }))).toBe(true);
  });

  describe('when an option is invalid', () => {
    it.each(INVALID)(
      'refuses %s with INVALID_OPTIONS naming field, expectation and value (%p)',
      (field, options, message) => {
        let error: unknown;
        try {
          resolveWriteCoordinatorOptions(options as never);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(InvalidOptionsError);
        expect(error).toMatchObject({ code: 'INVALID_OPTIONS', field, retryable: false });
        expect((error as Error).message).toContain(message);
      },
    );

    it('has a refusal case for every option (this table stays complete)', () => {
      const covered = new Set(INVALID.map(([field]) => field));
      expect(Object.keys(WRITE_COORDINATOR_DEFAULTS).filter((field) => !covered.has(field))).toEqual([]);
    });

    it('refuses options that are not an object', () => {
      expect(() => resolveWriteCoordinatorOptions(42 as never)).toThrow(
        'options must be an object (received 42, number)',
      );
    });
  });
});
