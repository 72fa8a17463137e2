import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileLibrary } from './fixtures/compiled-library';
import { createSchema, Member, rowsPerTag } from './fixtures/cluster-members';
import { freePort } from './fixtures/demo-process';
import { LiteFsStandIn } from './litefs-stand-in/stand-in';

/**
 * Several hosts on LiteFS (`cluster.primary: { strategy: 'litefs' }`), on the LiteFS stand-in (a
 * test double: test/litefs-stand-in/README.md): one real child process per "host", each with its
 * own mount directory, database file, `.primary`, `-pos` and event stream; writes forwarded over
 * HTTP to the primary host; replication asynchronous, with a delay.
 */
jest.setTimeout(180_000);

const NODES = ['node-a', 'node-b', 'node-c'] as const;
const SECRET = 'multi-host-test-secret';

let lib: ReturnType<typeof compileLibrary>;
beforeAll(() => (lib = compileLibrary()));
afterAll(() => lib.cleanup());

interface Hosts {
  standIn: LiteFsStandIn;
  members: Record<string, Member>;
  root: string;
  ports: Record<string, number>;
}

const running: Hosts[] = [];
afterEach(async () => {
  for (const hosts of running.splice(0)) {
    for (const member of Object.values(hosts.members)) member.kill();
    await Promise.all(Object.values(hosts.members).map((member) => member.exited));
    await hosts.standIn.stop();
    rmSync(hosts.root, { recursive: true, force: true });
  }
});

/** The `cluster` option of one host (its forwarding port and the others' come from HOST_PORTS). */
function clusterOf(standIn: LiteFsStandIn, name: string, extra: Record<string, unknown> = {}) {
  const node = standIn.node(name);
  return {
    secret: SECRET,
    heartbeatMs: 200,
    primary: { strategy: 'litefs', mountDir: node.mountDir, eventsUrl: node.eventsUrl },
    ...extra,
  };
}

/** Three hosts on the stand-in (node-a the primary), the schema replicated, one member per host. */
async function startHosts(
  options: { delayMs?: number; cluster?: Record<string, unknown>; env?: Record<string, string> } = {},
): Promise<Hosts> {
  const root = mkdtempSync(join(tmpdir(), 'wc-multi-host-'));
  mkdirSync(join(root, 'node-a'));
  createSchema(join(root, 'node-a', 'app.db')); // copied to every node by the stand-in at start
  const standIn = await LiteFsStandIn.start({
    root,
    nodes: NODES,
    primary: 'node-a',
    replicationDelayMs: options.delayMs ?? 20,
  });
  const ports: Record<string, number> = {};
  for (const name of NODES) ports[name] = await freePort();
  const hosts: Hosts = { standIn, members: {}, root, ports };
  running.push(hosts);
  for (const name of NODES) {
    const node = standIn.node(name);
    hosts.members[name] = await Member.start(
      lib.core,
      node.databasePath,
      clusterOf(standIn, name, options.cluster),
      {},
      {
        ...node.env,
        HOSTNAME: name,
        HOST_PORTS: JSON.stringify(ports),
        READ_AFTER_WRITE: '1',
        ...options.env,
      },
    );
  }
  return hosts;
}

/** Waits until `check()` holds (polling), or fails naming `what`. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Tags `prefix-0` … `prefix-(n-1)`. */
const tags = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Every node's rows per tag, once replication caught up. */
async function replicatedRows(hosts: Hosts): Promise<Record<string, Map<string, number>>> {
  await hosts.standIn.waitForReplication({ timeoutMs: 20_000 });
  return Object.fromEntries(NODES.map((name) => [name, rowsPerTag(hosts.standIn.node(name).databasePath)]));
}

describe('several hosts on LiteFS (the stand-in)', () => {
  it('3 hosts × 64 callers: every acknowledged write exactly once on every host, and seen by a read on the host that forwarded it', async () => {
    const hosts = await startHosts();
    const { members } = hosts;
    expect((await members['node-a'].metrics()).cluster).toMatchObject({ role: 'primary', strategy: 'litefs' });
    for (const name of ['node-b', 'node-c']) {
      await until(`${name} to connect to node-a`, async () => (await members[name].metrics()).cluster.peers === 1);
      expect((await members[name].metrics()).cluster).toMatchObject({ role: 'secondary', primaryHost: 'node-a' });
    }
    // 64 callers: 22 + 21 + 21 concurrent lanes, 150 writes per host.
    const lanes: Record<string, number> = { 'node-a': 22, 'node-b': 21, 'node-c': 21 };
    const outcomes = await Promise.all(
      NODES.map((name) => members[name].write(tags(name, 150), { concurrency: lanes[name] })),
    );
    const refused = outcomes.flatMap((outcome) => [...outcome.nacks.entries()]);
    expect(refused).toEqual([]);
    const acked = outcomes.flatMap((outcome) => [...outcome.acks.values()]);
    expect(acked).toHaveLength(450);
    // Read your writes: a read on the forwarding host, right after the answer, saw the row.
    expect(acked.filter((value) => (value as { seenHere?: boolean }).seenHere !== true)).toEqual([]);
    const rows = await replicatedRows(hosts);
    for (const name of NODES) {
      const duplicated = [...rows[name].entries()].filter(([, n]) => n !== 1);
      expect(duplicated).toEqual([]);
      expect(rows[name].size).toBe(450);
    }
    // Only the primary's processes wrote (a replica's file refuses writes).
    const writers = new Set(acked.map((value) => value.by));
    expect(writers).toEqual(new Set([members['node-a'].pid]));
  });

  it('a local write on a replica fails with NOT_PRIMARY (naming the primary), never a driver error, and writes nothing', async () => {
    const hosts = await startHosts();
    const { members } = hosts;
    await until('node-b to join', async () => (await members['node-b'].metrics()).cluster.peers === 1);
    for (const how of ['run', 'repository'] as const) {
      const outcome = await members['node-b'].local(`local-${how}`, how);
      expect(outcome).toMatchObject({ ok: false, code: 'NOT_PRIMARY', name: 'NotPrimaryError', primary: 'node-a' });
    }
    expect(await members['node-a'].local('local-on-primary')).toMatchObject({ ok: true });
    const rows = await replicatedRows(hosts);
    for (const name of NODES) {
      expect(rows[name].has('local-run')).toBe(false);
      expect(rows[name].has('local-repository')).toBe(false);
      expect(rows[name].get('local-on-primary')).toBe(1);
    }
  });

  it('primary change under load: writes pause and resume on the new primary, none applied twice, no caller left pending', async () => {
    const hosts = await startHosts({ delayMs: 10 });
    const { members, standIn } = hosts;
    for (const name of ['node-b', 'node-c'])
      await until(`${name} to join`, async () => (await members[name].metrics()).cluster.peers === 1);
    const writing = Promise.all(
      NODES.map((name) => members[name].write(tags(`move-${name}`, 400), { concurrency: 21 })),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await standIn.promote('node-b');
    const outcomes = await writing; // resolves only once every caller was answered
    const refused = outcomes.flatMap((outcome) => [...outcome.nacks.entries()]);
    expect(refused).toEqual([]);
    const acked = outcomes.flatMap((outcome) => [...outcome.acks.keys()]);
    expect(acked).toHaveLength(1_200);
    await until('node-b to be the primary', async () => (await members['node-b'].metrics()).cluster.role === 'primary');
    expect((await members['node-a'].metrics()).cluster).toMatchObject({ role: 'secondary', primaryHost: 'node-b' });
    const rows = await replicatedRows(hosts);
    for (const name of NODES) {
      expect([...rows[name].entries()].filter(([, n]) => n !== 1)).toEqual([]);
      expect(acked.filter((tag) => !rows[name].has(tag))).toEqual([]);
    }
    // Both primaries wrote: the move happened under load.
    const writers = new Set(outcomes.flatMap((outcome) => [...outcome.acks.values()].map((value) => value.by)));
    expect(writers).toEqual(new Set([members['node-a'].pid, members['node-b'].pid]));
  });

  it('a request whose first run had replicated is answered from the dedupe table when retried after a primary change', async () => {
    const hosts = await startHosts();
    const { members, standIn } = hosts;
    await until('node-c to join', async () => (await members['node-c'].metrics()).cluster.peers === 1);
    const first = await members['node-c'].write(['dedupe-1']);
    const value = first.acks.get('dedupe-1');
    expect(value).toMatchObject({ tag: 'dedupe-1', by: members['node-a'].pid });
    await standIn.waitForReplication();
    await standIn.promote('node-b');
    await until(
      'node-c to follow node-b',
      async () => (await members['node-c'].metrics()).cluster.primaryHost === 'node-b',
    );
    const again = await members['node-c'].write(['dedupe-1']);
    // The recorded outcome: same row id, written by node-a's process, not run again by node-b's.
    expect(again.acks.get('dedupe-1')).toMatchObject({ id: value!.id, tag: 'dedupe-1', by: members['node-a'].pid });
    const rows = await replicatedRows(hosts);
    for (const name of NODES) expect(rows[name].get('dedupe-1')).toBe(1);
  });
});
