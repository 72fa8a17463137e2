#!/usr/bin/env node
// The library as a user gets it: builds and packs nestjs-sqlite-write-coordinator, installs the
// tarball into throwaway Nest applications in a temporary directory outside the repository, compiles
// them with `tsc --strict`, runs them and checks what they report (see scripts/consumer-app/README.md).
//
// The install needs no download: each app gets a package-lock.json cut from the repository's own
// (the same versions and integrity hashes, only the packages the app needs), and `npm ci --offline`
// takes every tarball from the npm cache that the repository's `npm ci` filled. Install scripts are
// skipped: the one package that has one, better-sqlite3, gets the addon the repository's install
// compiled (same version, same Node), instead of a second minute-long compile.
//
// Usage: npm run consumer:check [-- --keep]   (--keep leaves the temporary directory for inspection)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const libraryDir = join(root, 'libs', 'write-coordinator');
const appSources = join(root, 'scripts', 'consumer-app');
const library = JSON.parse(readFileSync(join(libraryDir, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
const keep = process.argv.includes('--keep');

const REQUIRED_PEERS = Object.keys(library.peerDependencies).filter(
  (name) => !library.peerDependenciesMeta?.[name]?.optional,
);
const OPTIONAL_PEERS = Object.keys(library.peerDependencies).filter((name) => !REQUIRED_PEERS.includes(name));
/** The two applications: every peer and HTTP, then the required peers alone. */
const VARIANTS = [
  { name: 'full', dependencies: [...REQUIRED_PEERS, ...OPTIONAL_PEERS, '@nestjs/platform-express'] },
  { name: 'minimal', dependencies: REQUIRED_PEERS },
];
const DEV_DEPENDENCIES = ['typescript', '@types/node'];

let stepCount = 0;
const STEPS = 3 + VARIANTS.length * 4 + 1;
/** Runs one step, printing its number, name, outcome and duration. */
async function step(name, action) {
  stepCount += 1;
  process.stdout.write(`[consumer ${stepCount}/${STEPS}] ${name} … `);
  const started = performance.now();
  const detail = await action();
  console.log(`ok (${((performance.now() - started) / 1000).toFixed(1)} s)${detail ? `: ${detail}` : ''}`);
}

/** Runs a command; on failure, throws with its output. */
async function run(command, args, cwd) {
  try {
    return await promisify(execFile)(command, args, { cwd, maxBuffer: 64 * 1024 * 1024, env: process.env });
  } catch (error) {
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`, {
      cause: error,
    });
  }
}

/** Runs a compiled program of the app and returns the JSON of its `REPORT` line. */
async function report(dir, program, database) {
  const { stdout } = await run(process.execPath, [join('dist', program), join(dir, database)], dir);
  const line = stdout.split('\n').find((l) => l.startsWith('REPORT '));
  if (!line) throw new Error(`${program} printed no REPORT line:\n${stdout}`);
  return JSON.parse(line.slice('REPORT '.length));
}

/** The lock entry path `name` resolves to from the package at `from`, as Node's lookup would. */
function resolveInLock(from, name) {
  let base = from;
  for (;;) {
    const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (!base) return undefined;
    const parent = base.lastIndexOf('/node_modules/');
    base = parent < 0 ? '' : base.slice(0, parent);
  }
}

/** The repository's exact version of `name` (what its lock file installs). */
function lockedVersion(name) {
  const entry = lock.packages[`node_modules/${name}`];
  if (!entry) throw new Error(`${name} is not in the repository's package-lock.json`);
  return entry.version;
}

/**
 * A package-lock.json for an app depending on `names` and the tarball: the entries of the
 * repository's lock reachable from them (dependencies, optional dependencies and required peers,
 * where Node would find them), unchanged but for the flags that said how the repository used them.
 */
function consumerLock(app, names, tarball, integrity) {
  const wanted = [...names, ...Object.keys(library.dependencies ?? {})];
  const kept = new Set();
  const queue = wanted.map((name) => resolveInLock('', name) ?? fail(`${name} is not in the repository's lock`));
  while (queue.length > 0) {
    const path = queue.pop();
    if (kept.has(path)) continue;
    kept.add(path);
    const entry = lock.packages[path];
    const optionalPeer = (name) => entry.peerDependenciesMeta?.[name]?.optional;
    const needs = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}).filter((name) => !optionalPeer(name)),
    ];
    for (const name of needs) {
      const found = resolveInLock(path, name);
      if (found) queue.push(found);
      else if (!entry.optionalDependencies?.[name]) fail(`${path} needs ${name}, which the repository's lock lacks`);
    }
  }
  const packages = {
    '': { name: app.name, version: app.version, dependencies: app.dependencies, devDependencies: app.devDependencies },
  };
  for (const path of [...kept].sort()) {
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = lock.packages[path];
    packages[path] = entry;
  }
  const { name, version, license, dependencies, peerDependencies, peerDependenciesMeta, engines } = library;
  packages[`node_modules/${name}`] = {
    version,
    resolved: `file:../${tarball}`,
    integrity,
    license,
    dependencies,
    peerDependencies,
    peerDependenciesMeta,
    engines,
  };
  return { name: app.name, version: app.version, lockfileVersion: 3, requires: true, packages };
}

function fail(message) {
  throw new Error(message);
}

/**
 * The app's tsconfig: strict, CommonJS through Node's own resolution (so `exports` is honoured);
 * `node20` lets CommonJS code `require` the ESM-only Nest 12 packages, as Node 20.19+ does.
 */
function tsconfig(skipLibCheck) {
  return {
    compilerOptions: {
      strict: true,
      module: 'node20',
      target: 'ES2023',
      lib: ['ES2023'],
      types: ['node'],
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      esModuleInterop: true,
      skipLibCheck,
      rootDir: 'src',
      outDir: 'dist',
    },
    include: ['src'],
  };
}

/** Checks of the app with every peer installed. */
function checkFull(full, core) {
  const deposits = full.acknowledged;
  assert.equal(full.opened, 201, 'POST /accounts');
  assert.deepEqual(full.rejected, [], 'the 50 concurrent deposits were all acknowledged');
  assert.equal(deposits.length, 50);
  assert.deepEqual(
    [...full.committed.refs].sort(),
    deposits.map((d) => d.ref).sort(),
    'committed deposits = acknowledged ones',
  );
  assert.equal(full.committed.balance, deposits.length, 'the balance counts every acknowledged deposit once');
  assert.deepEqual(
    deposits.map((d) => d.balance).sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, i) => i + 1),
    'each deposit saw the state the previous one committed',
  );
  assert.equal(full.health.status, 200, `GET /health: ${JSON.stringify(full.health.body)}`);
  assert.equal(full.health.body.info?.writeCoordinator?.status, 'up', 'the Terminus indicator answers up');
  assert.equal(full.unknown.status, 404, 'the exception filter maps METHOD_NOT_FOUND to 404');
  assert.equal(full.unknown.body.code, 'METHOD_NOT_FOUND');
  assert.deepEqual(
    { accepted: full.metrics.accepted, completed: full.metrics.completed, failed: full.metrics.failed },
    { accepted: 52, completed: 51, failed: 1 },
    'the coordinator injected with @InjectWriteCoordinator() is the one that ran the deposits',
  );
  const events = full.events.reduce((count, label) => ({ ...count, [label]: (count[label] ?? 0) + 1 }), {});
  assert.deepEqual(events, { 'open account': 1, deposit: 50 }, 'JobCompleted events reached the @OnEvent listener');
  assert.deepEqual(core, { written: 7, blocked: [] }, 'the /core entry wrote without asking for any @nestjs package');
  const sample = (name) => full.prometheus.match(new RegExp(`^${name}\\{coordinator="default"\\} (\\d+)$`, 'm'))?.[1];
  assert.equal(sample('write_coordinator_jobs_completed_total'), '51', 'the /prometheus entry counted the commits');
  assert.equal(sample('write_coordinator_jobs_accepted_total'), '52', 'the /prometheus entry counted the accepted jobs');
  return (
    `50/50 deposits committed as acknowledged, health up, 404 METHOD_NOT_FOUND, ${full.events.length} events, ` +
    '/core without Nest, /prometheus counters'
  );
}

/** Checks of the app without the optional peers. */
function checkMinimal(minimal) {
  assert.deepEqual(minimal.installed, { eventEmitter: false, terminus: false }, 'optional peers absent');
  assert.equal(minimal.rejected, 0, 'no deposit failed');
  assert.equal(minimal.acknowledged.length, 50);
  assert.deepEqual(
    [...minimal.committed.refs].sort(),
    minimal.acknowledged.map((d) => d.ref).sort(),
    'committed deposits = acknowledged ones',
  );
  assert.equal(minimal.committed.balance, 50);
  assert.equal(minimal.health.code, 'INVALID_OPTIONS', 'isHealthy() without Terminus says what is missing');
  assert.match(minimal.health.message, /@nestjs\/terminus/);
  return '50/50 deposits committed as acknowledged, isHealthy() refuses naming @nestjs/terminus';
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'wc-consumer-'));
  if (!relative(root, work).startsWith('..')) fail(`the temporary directory ${work} is inside the repository`);
  let tarball;
  let integrity;
  const reports = {};
  try {
    await step('build the library (npm run build:lib)', async () => {
      await run('npm', ['run', '--silent', 'build:lib'], root);
      return relative(root, join(libraryDir, 'dist'));
    });
    await step('pack it (npm pack)', async () => {
      const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], libraryDir);
      const [packed] = JSON.parse(stdout);
      tarball = packed.filename;
      integrity = `sha512-${createHash('sha512')
        .update(readFileSync(join(work, tarball)))
        .digest('base64')}`;
      const stray = packed.files
        .map((f) => f.path)
        .filter((path) => !/^(dist\/.+\.(js|d\.ts|js\.map)|package\.json|README\.md|LICENSE)$/.test(path));
      assert.deepEqual(stray, [], 'the tarball holds only compiled JS, declarations, source maps, README, LICENSE');
      for (const file of ['README.md', 'LICENSE', 'dist/index.js', 'dist/core/index.js']) {
        assert.ok(
          packed.files.some((f) => f.path === file),
          `the tarball holds ${file}`,
        );
      }
      return `${tarball}, ${packed.entryCount} files, ${(packed.size / 1024).toFixed(1)} kB packed`;
    });
    await step('check the temporary directory is outside the repository', () => work);

    for (const variant of VARIANTS) {
      const dir = join(work, variant.name);
      mkdirSync(dir);
      const app = {
        name: `wc-consumer-${variant.name}`,
        version: '1.0.0',
        private: true,
        dependencies: Object.fromEntries([
          [library.name, `file:../${tarball}`],
          ...variant.dependencies.map((name) => [name, lockedVersion(name)]),
        ]),
        devDependencies: Object.fromEntries(DEV_DEPENDENCIES.map((name) => [name, lockedVersion(name)])),
      };
      const names = [...variant.dependencies, ...DEV_DEPENDENCIES];
      await step(`${variant.name}: npm ci --offline (lock cut from the repository's)`, async () => {
        writeFileSync(join(dir, 'package.json'), `${JSON.stringify(app, null, 2)}\n`);
        const appLock = consumerLock(app, names, tarball, integrity);
        writeFileSync(join(dir, 'package-lock.json'), `${JSON.stringify(appLock, null, 2)}\n`);
        await run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], dir);
        const addon = join('node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
        mkdirSync(dirname(join(dir, addon)), { recursive: true });
        copyFileSync(join(root, addon), join(dir, addon));
        const missing = variant.name === 'minimal' ? `, without ${OPTIONAL_PEERS.join(' and ')}` : '';
        return `${Object.keys(appLock.packages).length - 1} packages${missing}`;
      });
      await step(`${variant.name}: tsc --strict`, async () => {
        // Without the optional peers, the library's declarations name types nobody installed.
        writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig(variant.name === 'minimal'), null, 2));
        for (const folder of ['shared', variant.name])
          cpSync(join(appSources, folder), join(dir, 'src', folder), { recursive: true });
        rmSync(join(dir, 'src', 'shared', 'README.md'), { force: true });
        await run(join(dir, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--strict'], dir);
        return `skipLibCheck ${variant.name === 'minimal'}`;
      });
      await step(`${variant.name}: boot and run`, async () => {
        reports[variant.name] = await report(dir, join(variant.name, 'main.js'), `${variant.name}.db`);
        if (variant.name === 'full') reports.core = await report(dir, join('full', 'core-only.js'), 'core-only.db');
      });
      await step(`${variant.name}: check`, () =>
        variant.name === 'full' ? checkFull(reports.full, reports.core) : checkMinimal(reports.minimal),
      );
    }
    await step('clean up', () =>
      keep ? `kept ${work}` : (rmSync(work, { recursive: true, force: true }), basename(work)),
    );
    console.log('consumer check passed');
  } catch (error) {
    console.log('FAILED');
    console.error(
      error instanceof assert.AssertionError
        ? `${error.message}\n${JSON.stringify(reports, null, 1).slice(0, 4000)}`
        : error,
    );
    console.error(`(the applications are kept in ${work})`);
    process.exitCode = 1;
  }
}

await main();
