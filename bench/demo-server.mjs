// The built demo (`node dist/src/main.js`) as a child process of a benchmark: its own port, a fresh
// database file in a temporary directory, extra environment settings; the CPU time it has used so
// far, read from /proc (Linux), so a benchmark can charge each request its server-side cost.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { clearTimeout } from 'node:timers';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(root, 'dist', 'src', 'main.js');

/** Clock ticks per second of /proc/<pid>/stat's CPU times (`getconf CLK_TCK`, usually 100). */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** A port that was free a moment ago. */
async function freePort() {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * User + system CPU time the process `pid` has used, in µs, or `undefined` where /proc is not
 * readable. Resolution: one clock tick (10 ms at CLK_TCK 100).
 */
export function processCpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): state is field 3,
    // utime field 14, stime field 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
  } catch {
    return undefined;
  }
}

/** The pids of `pid`'s children (Linux /proc, `CONFIG_PROC_CHILDREN`), `[]` where unreadable. */
export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((s) => s.trim() !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * Starts the demo on a fresh database with `env` added to this process's environment and waits
 * until `GET /health` answers 200.
 *
 * @returns `{ url, pid, cpuMicros(), workerPids(), output(), stop() }`; `stop()` sends SIGTERM, waits for the
 *   exit and removes the database directory.
 * @throws when the demo exits or is not healthy within 30 s, with its output.
 */
export async function startDemoServer(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'wc-bench-http-'));
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    cwd: root,
    env: {
      ...process.env,
      READINESS_DELAY_MS: '0',
      SHUTDOWN_GRACE_MS: '5000',
      ...env,
      PORT: String(port),
      DATABASE_PATH: join(dir, 'ledger.db'),
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk) => (output = (output + chunk.toString()).slice(-20_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const server = {
    url,
    pid: child.pid,
    cpuMicros: () => processCpuMicros(child.pid),
    /** With `WORKERS` > 1: the pids of the master's live children (its workers), from /proc; `[]` where unreadable. */
    workerPids: () => childPids(child.pid),
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const status = await fetch(`${url}/health`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return server;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await server.stop();
  throw new Error(`the demo did not become healthy (env ${JSON.stringify(env)}):\n${output.trim()}`);
}
