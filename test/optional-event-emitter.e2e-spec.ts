import { execFile, execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './fixtures/temp-sqlite';

const root = join(__dirname, '..');
// Inside node_modules so that the compiled library resolves its dependencies from the project, and
// apart from dist/ so that a concurrent `nest build` (the process tests) never deletes it.
const libraryDir = join(root, 'node_modules', '.cache', `write-coordinator-no-events-${process.pid}`);

describe('WriteCoordinatorModule without @nestjs/event-emitter installed', () => {
  beforeAll(() => {
    execFileSync(
      join(root, 'node_modules', '.bin', 'tsc'),
      [
        '-p',
        join(root, 'libs', 'write-coordinator', 'tsconfig.lib.json'),
        '--outDir',
        libraryDir,
        '--sourceMap',
        'false',
      ],
      { cwd: root, stdio: 'pipe' },
    );
  }, 120_000);
  afterAll(() => rmSync(libraryDir, { recursive: true, force: true }));

  it('loads the compiled library, boots and serialises writes in a process where the package cannot be resolved', async () => {
    const tmp = tempDir();
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [join(__dirname, 'fixtures', 'workers', 'no-event-emitter-worker.mjs'), libraryDir, tmp.file('app.db')],
        { cwd: root, timeout: 60_000 },
      );
      const report = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      expect(report).toEqual({
        blocked: ['@nestjs/event-emitter'], // the library asked for it once, lazily, and went on without it
        loaded: [],
        submitted: { id: 3 },
        metrics: { accepted: 3, completed: 3, failed: 0, rejected: 0 },
        committed: [
          { id: 1, via: 'run' },
          { id: 2, via: 'repository' },
          { id: 3, via: 'submit' },
        ],
      });
    } finally {
      tmp.cleanup();
    }
  }, 90_000);
});
