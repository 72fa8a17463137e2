import { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { WriteCoordinator } from '@app/write-coordinator';
import { createDemoApp } from './fixtures/demo-app';
import { DemoConfig, loadConfig } from '../src/config';
import { LedgerService } from '../src/ledger/ledger.service';
import { tempDir } from './fixtures/temp-sqlite';

describe('demo configuration', () => {
  describe('loadConfig', () => {
    it('reads the write settings bench:http passes to the demo', () => {
      const config = loadConfig({ WRITE_SYNCHRONOUS: 'NORMAL', WRITE_MAX_BATCH_SIZE: '1', WRITE_BATCH_YIELD: 'never' });
      expect(config).toMatchObject({ writeSynchronous: 'NORMAL', writeMaxBatchSize: 1, writeBatchYield: 'never' });
    });

    it('leaves them to the coordinator when unset or empty', () => {
      for (const env of [{}, { WRITE_SYNCHRONOUS: '', WRITE_MAX_BATCH_SIZE: '', WRITE_BATCH_YIELD: '' }]) {
        const config = loadConfig(env);
        expect([config.writeSynchronous, config.writeMaxBatchSize, config.writeBatchYield]).toEqual([
          undefined,
          undefined,
          undefined,
        ]);
      }
    });

    it('runs one process without a cluster by default; WORKERS > 1 turns the cluster on, WRITE_CLUSTER overrides', () => {
      const pick = (env: NodeJS.ProcessEnv) => {
        const { workers, writeCluster } = loadConfig(env);
        return { workers, writeCluster };
      };
      expect(pick({})).toEqual({ workers: 1, writeCluster: false });
      expect(pick({ WORKERS: '', WRITE_CLUSTER: '' })).toEqual({ workers: 1, writeCluster: false });
      expect(pick({ WORKERS: '4' })).toEqual({ workers: 4, writeCluster: true });
      expect(pick({ WORKERS: '4', WRITE_CLUSTER: '0' })).toEqual({ workers: 4, writeCluster: false });
      expect(pick({ WORKERS: '1', WRITE_CLUSTER: '1' })).toEqual({ workers: 1, writeCluster: true });
    });

    it.each([
      ['WORKERS', '0', "WORKERS must be an integer, 1 or more (received '0')"],
      ['WORKERS', 'four', "WORKERS must be an integer, 1 or more (received 'four')"],
      ['WRITE_CLUSTER', 'yes', "WRITE_CLUSTER must be one of 0, 1 (received 'yes')"],
      ['WRITE_SYNCHRONOUS', 'full', "WRITE_SYNCHRONOUS must be one of OFF, NORMAL, FULL, EXTRA (received 'full')"],
      ['WRITE_MAX_BATCH_SIZE', '0', "WRITE_MAX_BATCH_SIZE must be an integer, 1 or more (received '0')"],
      ['WRITE_MAX_BATCH_SIZE', '2.5', "WRITE_MAX_BATCH_SIZE must be an integer, 1 or more (received '2.5')"],
      ['WRITE_MAX_BATCH_SIZE', 'many', "WRITE_MAX_BATCH_SIZE must be an integer, 1 or more (received 'many')"],
      ['WRITE_BATCH_YIELD', 'sometimes', "WRITE_BATCH_YIELD must be one of auto, always, never (received 'sometimes')"],
    ])('refuses %s=%s naming the variable and the value', (name, value, message) => {
      expect(() => loadConfig({ [name]: value })).toThrow(message);
    });
  });

  describe('AppModule', () => {
    let tmp: ReturnType<typeof tempDir>;
    let app: INestApplication | undefined;

    const boot = async (settings: Partial<DemoConfig>) => {
      app = await createDemoApp(tmp.file('ledger.db'), settings);
      return app;
    };
    /** Opens 16 accounts at once (16 queued jobs) and returns the largest batch they formed. */
    const largestBatchOf16 = async (nest: INestApplication) => {
      const ledger = nest.get(LedgerService);
      await Promise.all(Array.from({ length: 16 }, (_, i) => ledger.openAccount({ name: `a${i}`, initialBalance: 1 })));
      return nest.get(WriteCoordinator).metrics().batches.largest;
    };

    beforeEach(() => {
      tmp = tempDir('wc-demo-config-');
    });
    afterEach(async () => {
      await app?.close();
      app = undefined;
      tmp.cleanup();
    });

    it('applies WRITE_SYNCHRONOUS to the writing connection', async () => {
      const nest = await boot({ writeSynchronous: 'NORMAL' });
      const driver = nest.get(DataSource).driver as unknown as {
        databaseConnection: { pragma(name: string, options: { simple: true }): unknown };
      };
      expect(driver.databaseConnection.pragma('synchronous', { simple: true })).toBe(1);
    });

    it('forms group-commit batches by default', async () => {
      expect(await largestBatchOf16(await boot({}))).toBeGreaterThan(1);
    });

    it('turns group commit off with WRITE_MAX_BATCH_SIZE=1', async () => {
      expect(await largestBatchOf16(await boot({ writeMaxBatchSize: 1 }))).toBe(1);
    });
  });
});
