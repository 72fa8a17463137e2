import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { tempDir } from './fixtures/temp-sqlite';

const root = join(__dirname, '..');
const EXAMPLE = join('examples', 'plain-node.mjs');
/** How the example imports the library in this repository, and how a user's own code does. */
const BUILT_ENTRY = "'../dist/libs/write-coordinator/src/core/index.js'";
const PACKAGE = "'nestjs-sqlite-write-coordinator/core'";

/**
 * A copy of the repository as the example sees it, in a temp dir: `examples/plain-node.mjs` (the
 * file itself, byte for byte), `dist/` built by `nest build` from the project's build config, and
 * `node_modules` (a link to the project's). Only the output directory differs from
 * `npx nest build && node examples/plain-node.mjs`: a `nest build` of the process tests, running
 * in another Jest worker, deletes and rewrites the project's `dist/` and must not pull it from
 * under this one.
 */
function checkout(dir: string): string {
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const tsconfig = join(dir, 'tsconfig.build.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({ extends: join(root, 'tsconfig.build.json'), compilerOptions: { outDir: join(dir, 'dist') } }),
  );
  // The project's nest-cli.json, told to build with that tsconfig into a directory outside the project.
  const cli = JSON.parse(readFileSync(join(root, 'nest-cli.json'), 'utf8')) as { compilerOptions: object };
  const config = join(dir, 'nest-cli.json');
  writeFileSync(
    config,
    JSON.stringify({
      ...cli,
      compilerOptions: { ...cli.compilerOptions, tsConfigPath: relative(root, tsconfig), allowOutsidePaths: true },
    }),
  );
  // The CLI reads these paths relative to the working directory, even when absolute.
  execFileSync(join(root, 'node_modules', '.bin', 'nest'), ['build', '--config', relative(root, config)], {
    cwd: root,
    stdio: 'pipe',
  });
  mkdirSync(join(dir, 'examples'));
  const example = join(dir, EXAMPLE);
  copyFileSync(join(root, EXAMPLE), example);
  return example;
}

/** The first ```js block after `heading` in a markdown page. */
function jsBlockAfter(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const at = lines.indexOf(heading);
  if (at < 0) throw new Error(`no heading '${heading}'`);
  const open = lines.indexOf('```js', at);
  const close = lines.indexOf('```', open + 1);
  if (open < 0 || close < 0) throw new Error(`no \`\`\`js block after '${heading}'`);
  return lines.slice(open + 1, close).join('\n');
}

/** Every row of `table`, through a fresh read-only connection. */
function rows(database: string, table: string): unknown[] {
  const db = new Database(database, { readonly: true });
  try {
    return db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all();
  } finally {
    db.close();
  }
}

describe('examples/plain-node.mjs (a Coordinator without Nest, docs/getting-started.md)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let example: string;

  beforeAll(() => {
    tmp = tempDir('wc-plain-node-');
    example = checkout(tmp.dir);
  }, 120_000);
  afterAll(() => tmp?.cleanup());

  it('runs as written: serialises concurrent run() writes and a submit(), prints them, closes and commits its rows', async () => {
    expect(readFileSync(example, 'utf8')).toBe(readFileSync(join(root, EXAMPLE), 'utf8'));
    const database = tmp.file('plain-node.db');

    // With every @nestjs package unresolvable: the Nest-free entry must not load one.
    const withoutNest = join(root, 'test', 'fixtures', 'workers', 'without-nest.cjs');
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--require', withoutNest, example, database],
      {
        cwd: tmp.dir,
        timeout: 60_000, // the script must end on its own: close() and destroy() leave nothing open
      },
    );

    const lines = stdout.trim().split('\n');
    // A figure, not an assertion: how group commit packed the six jobs.
    console.log(lines[3]);
    expect(lines).toEqual([
      'run: 5 concurrent increments returned 1, 2, 3, 4, 5',
      'submit: visit.record returned {"page":"/home","id":1}',
      'submit: visit.record with a bad page was refused with INVALID_PARAMS',
      expect.stringMatching(
        /^metrics: accepted 6, completed 6, failed 0, rejected 1, 6 jobs committed in [1-6] transaction\(s\)$/,
      ),
      `closed: the rows are in ${database}`,
    ]);
    expect(stderr).toBe(''); // no warning from the coordinator

    expect(rows(database, 'counters')).toEqual([{ name: 'hits', value: 5 }]);
    expect(rows(database, 'visits')).toEqual([{ id: 1, page: '/home' }]);
  }, 90_000);

  it('is the code docs/getting-started.md shows, but for the import of the library by its package name', () => {
    const file = readFileSync(join(root, EXAMPLE), 'utf8');
    expect(file).toContain(`from ${BUILT_ENTRY};`);
    const code = file.slice(file.search(/^import /m)).trimEnd(); // without the header comment
    const page = readFileSync(join(root, 'docs', 'getting-started.md'), 'utf8');
    expect(jsBlockAfter(page, '## Without Nest: a script or worker')).toBe(code.replace(BUILT_ENTRY, PACKAGE));
  });
});
