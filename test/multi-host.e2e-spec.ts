import { request } from 'node:http';
import type { Socket } from 'node:net';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Injectable } from '@nestjs/common';
import { WriteCoordinator, WriteCoordinatorHealthIndicator, WriteHandler } from '@app/write-coordinator';
import { rowsPerTag } from './fixtures/cluster-members';
import { createTestingApp } from './fixtures/testing-app';
import { NODES, replicatedRows, tags, until, useStandInHosts } from './fixtures/stand-in-hosts';

/**
 * Several hosts on LiteFS (`cluster.primary: { strategy: 'litefs' }`), on the LiteFS stand-in (a
 * test double: test/litefs-stand-in/README.md): one real child process per "host", each with its
 * own mount directory, database file, `.primary`, `-pos` and event stream; writes forwarded over
 * HTTP to the primary host; replication asynchronous, with a delay.
 */
jest.setTimeout(180_000);

const SECRET = 'multi-host-test-secret';
const startHosts = useStandInHosts('wc-multi-host-', SECRET).start;

/** The members' handler names (the cluster handshake compares them); never runs on a replica. */
@Injectable()
class AppendHandler {
  @WriteHandler('append')
  append(): void {}
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

  it('writes the old primary was running itself (no request id) when the lease moved go to the new primary: all answered, each once', async () => {
    const hosts = await startHosts({ delayMs: 10 });
    const { members, standIn } = hosts;
    const writing = members['node-a'].write(tags('no-id', 400), { concurrency: 32, withoutRequestId: true });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await standIn.promote('node-b');
    const outcome = await writing;
    expect([...outcome.nacks.entries()]).toEqual([]);
    const writers = new Set([...outcome.acks.values()].map((value) => value.by));
    expect(writers).toEqual(new Set([members['node-a'].pid, members['node-b'].pid]));
    const rows = await replicatedRows(hosts);
    for (const name of NODES) {
      expect([...rows[name].entries()].filter(([, n]) => n !== 1)).toEqual([]);
      expect(rows[name].size).toBe(400);
    }
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

  it('read your writes times out as REPLICATION_TIMEOUT (written, not retryable) while replication lags; the lag shows in metrics, then clears', async () => {
    const hosts = await startHosts({ cluster: { readYourWritesMs: 300 } });
    const { members, standIn } = hosts;
    await until('node-b to join', async () => (await members['node-b'].metrics()).cluster.peers === 1);
    standIn.setDelay(3_000);
    const outcome = await members['node-b'].write(['lagging']);
    expect(outcome.nacks.get('lagging')).toMatchObject({ code: 'REPLICATION_TIMEOUT', retryable: false });
    // Committed on the primary at once, not yet here.
    expect(rowsPerTag(standIn.node('node-a').databasePath).get('lagging')).toBe(1);
    expect(rowsPerTag(standIn.node('node-b').databasePath).has('lagging')).toBe(false);
    await until('the lag to show', async () => {
      const replication = (await members['node-b'].metrics()).cluster.replication as { behind: number; lagMs: number };
      return replication.behind >= 1 && replication.lagMs >= 200;
    });
    standIn.setDelay(5);
    await until('the lag to clear', async () => {
      const replication = (await members['node-b'].metrics()).cluster.replication as { behind: number; lagMs: number };
      return replication.behind === 0 && replication.lagMs === 0;
    });
    const rows = await replicatedRows(hosts);
    for (const name of NODES) expect(rows[name].get('lagging')).toBe(1);
  });

  it('health: a replica that missed a transaction for longer than maxReplicaLagMs is down (not ready), and up again once it caught up', async () => {
    const hosts = await startHosts();
    const { standIn, ports } = hosts;
    const node = standIn.node('node-b');
    // A Nest app on node-b's mount (a second process of that host, in this process), with its health indicator.
    const app = await createTestingApp({
      database: node.databasePath,
      typeorm: { synchronize: false }, // a replica's file: nothing to create
      coordinator: {
        cluster: {
          secret: SECRET,
          heartbeatMs: 100,
          primary: { strategy: 'litefs', mountDir: node.mountDir, eventsUrl: node.eventsUrl },
          http: { host: '127.0.0.1', port: 0, url: (host) => `http://127.0.0.1:${ports[host]}/_write-coordinator` },
        },
      },
      providers: [HealthIndicatorService, WriteCoordinatorHealthIndicator, AppendHandler],
    });
    try {
      const indicator = app.get(WriteCoordinatorHealthIndicator);
      const health = async () => (await indicator.isHealthy('writes', { maxReplicaLagMs: 300 })).writes;
      await until('the replica to join', () => app.get(WriteCoordinator).metrics().cluster?.peers === 1);
      expect(await health()).toMatchObject({ status: 'up' });
      standIn.setDelay(3_600_000); // replication stalls
      await hosts.members['node-a'].write(['while-stalled']);
      await until('the replica to be down', async () => (await health()).status === 'down');
      expect(await health()).toMatchObject({ reason: expect.stringContaining('behind the primary') });
      standIn.setDelay(5);
      await until('the replica to be up again', async () => (await health()).status === 'up');
    } finally {
      await app.close();
    }
  });

  describe('bad input on the forwarding endpoint is refused clearly and writes nothing', () => {
    /** Opens an upgraded connection to a host's forwarding endpoint (raw: the test writes the bytes). */
    function upgrade(
      port: number,
      secret: string,
    ): Promise<{ socket: Socket; head: Buffer } | { status: number; body: string }> {
      return new Promise((resolve, reject) => {
        const req = request({
          host: '127.0.0.1',
          port,
          path: '/_write-coordinator',
          headers: { Connection: 'Upgrade', Upgrade: 'write-coordinator/1', Authorization: `Bearer ${secret}` },
        });
        req.on('upgrade', (_res, socket, head) => resolve({ socket, head }));
        req.on('response', (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
    }

    /** A length-prefixed frame of raw bytes. */
    const frame = (body: Buffer | string) => {
      const bytes = Buffer.from(body);
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(bytes.length);
      return Buffer.concat([prefix, bytes]);
    };

    /** Frames received on `socket` until it closes (parsed JSON). */
    function framesUntilClose(socket: Socket, head: Buffer): Promise<Array<Record<string, unknown>>> {
      return new Promise((resolve) => {
        let buffer = head;
        const frames: Array<Record<string, unknown>> = [];
        const drain = () => {
          while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
            const length = buffer.readUInt32BE(0);
            frames.push(JSON.parse(buffer.subarray(4, 4 + length).toString()) as Record<string, unknown>);
            buffer = buffer.subarray(4 + length);
          }
        };
        drain();
        socket.on('data', (chunk: Buffer) => {
          buffer = Buffer.concat([buffer, chunk]);
          drain();
        });
        socket.on('close', () => resolve(frames));
        socket.on('error', () => undefined);
      });
    }

    /** Sends frames on an upgraded connection and collects the answers until `count` arrived. */
    function exchange(socket: Socket, head: Buffer, frames: Array<Record<string, unknown>>, count: number) {
      return new Promise<Array<Record<string, unknown>>>((resolve, reject) => {
        let buffer = head;
        const answers: Array<Record<string, unknown>> = [];
        const timer = setTimeout(
          () => reject(new Error(`only ${answers.length} of ${count} answers: ${JSON.stringify(answers)}`)),
          10_000,
        );
        const drain = () => {
          while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
            const length = buffer.readUInt32BE(0);
            answers.push(JSON.parse(buffer.subarray(4, 4 + length).toString()) as Record<string, unknown>);
            buffer = buffer.subarray(4 + length);
          }
          if (answers.length >= count) {
            clearTimeout(timer);
            resolve(answers);
          }
        };
        socket.on('data', (chunk: Buffer) => {
          buffer = Buffer.concat([buffer, chunk]);
          drain();
        });
        for (const f of frames) socket.write(frame(JSON.stringify(f)));
        drain();
      });
    }

    const hello = { type: 'hello', protocol: 1, pid: 1, handlers: ['submit:append'], secret: SECRET, changes: false };

    it('wrong or missing secret: 401 before anything is read; a plain POST with a body: 426', async () => {
      const hosts = await startHosts();
      const port = hosts.ports['node-a'];
      const wrong = await upgrade(port, 'not-the-secret');
      expect(wrong).toMatchObject({ status: 401 });
      expect(JSON.parse((wrong as { body: string }).body)).toMatchObject({ code: 'UNAUTHORIZED' });
      const response = await fetch(`http://127.0.0.1:${port}/_write-coordinator`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` },
        body: JSON.stringify({
          requestId: 'posted',
          call: { op: 'submit', method: 'append', params: { tag: 'posted' } },
        }),
      });
      expect(response.status).toBe(426);
      const rows = await replicatedRows(hosts);
      for (const name of NODES) expect(rows[name].has('posted')).toBe(false);
    });

    it('malformed and oversized frames: a PROTOCOL error frame, the connection closed, the host still serving', async () => {
      const hosts = await startHosts();
      const port = hosts.ports['node-a'];
      for (const bytes of [
        frame('{"type": "hello", nope'),
        frame('[1, 2, 3]'),
        Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x7b]),
      ]) {
        const opened = await upgrade(port, SECRET);
        if (!('socket' in opened)) throw new Error(`upgrade refused: ${opened.status} ${opened.body}`);
        const frames = framesUntilClose(opened.socket, opened.head);
        opened.socket.write(bytes);
        expect(await frames).toEqual([expect.objectContaining({ type: 'error', code: 'PROTOCOL' })]);
      }
      // The hosts still forward and write.
      const outcome = await hosts.members['node-c'].write(['after-garbage']);
      expect(outcome.nacks).toEqual(new Map());
      expect((await replicatedRows(hosts))['node-b'].get('after-garbage')).toBe(1);
    });

    it('a replay of a known requestId with another body is refused (INVALID_PARAMS) and writes nothing', async () => {
      const hosts = await startHosts();
      const opened = await upgrade(hosts.ports['node-a'], SECRET);
      if (!('socket' in opened)) throw new Error(`upgrade refused: ${opened.status} ${opened.body}`);
      const request = (id: number, tag: string) => ({
        type: 'request',
        id,
        requestId: 'replayed-id',
        call: { op: 'submit', method: 'append', params: { tag } },
        timeoutMs: 5_000,
      });
      const [welcome, first] = await exchange(opened.socket, opened.head, [hello, request(1, 'original')], 2);
      expect(welcome).toMatchObject({ type: 'welcome' });
      expect(first).toMatchObject({ type: 'response', id: 1, ok: true, result: { tag: 'original' } });
      const [replay, same] = await exchange(
        opened.socket,
        Buffer.alloc(0),
        [request(2, 'evil'), request(3, 'original')],
        2,
      );
      expect(replay).toMatchObject({ type: 'response', id: 2, ok: false, error: { code: 'INVALID_PARAMS' } });
      // The same body again is answered from the table: the recorded outcome, not a second row.
      expect(same).toMatchObject({ type: 'response', id: 3, ok: true, result: first.result });
      opened.socket.destroy();
      const rows = await replicatedRows(hosts);
      for (const name of NODES) {
        expect(rows[name].get('original')).toBe(1);
        expect(rows[name].has('evil')).toBe(false);
      }
    });
  });
});
