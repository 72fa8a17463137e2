import 'reflect-metadata';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import {
  PrimaryForwardingInterceptor,
  WriteCoordinator,
  WriteCoordinatorExceptionFilter,
} from 'nestjs-sqlite-write-coordinator';
import { readCommitted } from '../shared/committed';
import { DepositService } from '../shared/deposit.service';
import { AppModule, CompletedJobs, registry } from './app.module';

/** Boots the app on `argv[2]` (a SQLite file), drives it over HTTP and prints `REPORT <json>`. */
async function main(database: string): Promise<void> {
  const app = await NestFactory.create(AppModule.forDatabase(database), { logger: ['error', 'warn'] });
  app.useGlobalFilters(new WriteCoordinatorExceptionFilter(app.get(HttpAdapterHost)));
  // Several hosts' HTTP helper, on one host: every route must run as before (the checks below).
  app.useGlobalInterceptors(new PrimaryForwardingInterceptor(app.get(WriteCoordinator), { routes: 'writes' }));
  await app.listen(0, '127.0.0.1');
  const base = await app.getUrl();
  const call = async (method: string, path: string) => {
    const response = await fetch(`${base}${path}`, { method });
    return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.json() };
  };

  const opened = await call('POST', '/accounts');
  // 50 calls at once, in process: every read starts before any write unless the calls are serialised.
  const ledger = app.get(DepositService);
  const deposits = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => ledger.deposit(`d${i}`)));
  const health = await call('GET', '/health');
  const unknown = await call('POST', '/writes/unknown');
  const metrics = await call('GET', '/writes/metrics');
  const events = app.get(CompletedJobs).labels;
  const prometheus = await registry.metrics();
  await app.close();

  const report = {
    opened: opened.status,
    acknowledged: deposits.flatMap((d, i) => (d.status === 'fulfilled' ? [{ ref: `d${i}`, balance: d.value }] : [])),
    rejected: deposits.flatMap((d) => (d.status === 'rejected' ? [String(d.reason)] : [])),
    committed: readCommitted(database),
    health,
    unknown,
    metrics: metrics.body,
    events,
    prometheus,
  };
  console.log(`REPORT ${JSON.stringify(report)}`);
}

main(process.argv[2] ?? 'consumer.db').catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
