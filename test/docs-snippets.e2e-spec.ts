import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { WriteCoordinator } from '@app/write-coordinator';
import { deferred } from './fixtures/deferred';
import { AuditEntry } from './fixtures/docs-snippets/prelude';
import {
  checkSnippets,
  extractSnippets,
  readDocsSnippets,
  runSnippetFile,
  Snippet,
  SnippetFile,
} from './fixtures/docs-snippets/snippets';
import { tempDir } from './fixtures/temp-sqlite';

const root = join(__dirname, '..');
const prelude = join(__dirname, 'fixtures', 'docs-snippets', 'prelude');

/** A page that must fail: proves that a broken block is reported with its page and line. */
const BROKEN = ['# broken', '', '```ts', 'const ok = 1;', "const size: number = '1024';", '```', ''].join('\n');

/** Polls `condition` (each macrotask) until it holds; fails after 5 s naming `what`. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('Code blocks of README.md and docs/*.md', () => {
  let snippets: Snippet[];
  let checked: { errors: string[]; files: SnippetFile[] };

  beforeAll(() => {
    snippets = [...readDocsSnippets(root), ...extractSnippets('test/broken.md', BROKEN)];
    const started = performance.now();
    checked = checkSnippets(root, snippets, prelude);
    // A figure, not an assertion: one program for every block.
    console.log(
      `type-checked ${checked.files.length} snippet files (${snippets.length} blocks) in ${Math.round(performance.now() - started)} ms`,
    );
  }, 120_000);

  it('compiles every ```ts block against the library (errors name the page and line)', () => {
    const [broken, docs] = [
      checked.errors.filter((e) => e.startsWith('test/broken.md')),
      checked.errors.filter((e) => !e.startsWith('test/broken.md')),
    ];
    expect(docs).toEqual([]);
    expect(broken).toEqual(["test/broken.md:5: TS2322: Type 'string' is not assignable to type 'number'."]);
  });

  it('finds the blocks of every page that has some, and skips none without a reason', () => {
    const pages = new Set(snippets.map((s) => s.page));
    expect([...pages]).toEqual(expect.arrayContaining(['README.md', 'docs/getting-started.md', 'docs/testing.md']));
    expect(snippets.filter((s) => s.context === 'skip')).toEqual([]);
  });

  describe('the getting-started application (run: forRootAsync from the environment, a write, a client that gives up)', () => {
    let app: INestApplication;
    let tmp: ReturnType<typeof tempDir>;
    const saved = { ...process.env };

    beforeEach(async () => {
      tmp = tempDir();
      // As `ConfigModule` sees them in production: strings.
      Object.assign(process.env, {
        DATABASE_PATH: tmp.file('app.db'),
        WRITE_QUEUE_SIZE: '1024',
        WRITE_TIMEOUT_MS: '10000',
      });
      // The schema, as migrations would have created it.
      const schema = new DataSource({
        type: 'better-sqlite3',
        database: tmp.file('app.db'),
        entities: [AuditEntry],
        synchronize: true,
      });
      await schema.initialize();
      await schema.destroy();

      const file = checked.files.find((f) => f.group === 'getting-started');
      if (!file) throw new Error('docs/getting-started.md has no <!-- snippet: run:getting-started --> blocks');
      const { AppModule } = await runSnippetFile(file, require);
      const moduleRef = await Test.createTestingModule({ imports: [AppModule as never] }).compile();
      app = moduleRef.createNestApplication({ logger: false });
      await app.listen(0, '127.0.0.1');
    }, 60_000);

    afterEach(async () => {
      await app?.close();
      tmp.cleanup();
      process.env = saved;
    });

    const committed = (): string[] => {
      const db = new Database(tmp.file('app.db'), { readonly: true });
      try {
        return (db.prepare('SELECT action FROM audit_entry ORDER BY id').all() as { action: string }[]).map(
          (r) => r.action,
        );
      } finally {
        db.close();
      }
    };

    it('boots with the options converted from environment strings and writes', async () => {
      const coordinator = app.get(WriteCoordinator);
      expect(coordinator.metrics()).toMatchObject({ maxQueue: 1024 });
      const response = await request(app.getHttpServer()).post('/audit').send({ action: 'opened' }).expect(201);
      expect(response.body).toMatchObject({ action: 'opened', id: 1 });
      expect(committed()).toEqual(['opened']);
    });

    it('cancels the write of a client that gives up while it waits: never run, nothing written', async () => {
      const coordinator = app.get(WriteCoordinator);
      const gate = deferred();
      const blocker = coordinator.run(() => gate.promise, { label: 'blocker' });
      await until(() => coordinator.metrics().running === 1, 'the blocker to run');

      try {
        const abandoned = request(app.getHttpServer()).post('/audit').send({ action: 'abandoned' });
        abandoned.end(() => undefined);
        await until(() => coordinator.metrics().queueDepth === 1, 'the request to be queued');
        abandoned.abort();
        await until(() => coordinator.metrics().cancelled === 1, 'the job to be cancelled');
      } finally {
        gate.resolve();
      }
      await blocker;
      await request(app.getHttpServer()).post('/audit').send({ action: 'after' }).expect(201);
      expect(committed()).toEqual(['after']);
      expect(coordinator.metrics()).toMatchObject({ cancelled: 1, completed: 2, queueDepth: 0 });
    }, 15_000);
  });
});
