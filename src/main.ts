import 'reflect-metadata';
import cluster from 'node:cluster';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { setupApp } from './app.setup';
import { runClusterMaster } from './cluster-master';
import { loadConfig } from './config';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const workers = config.workers ?? 1;
  if (workers > 1 && cluster.isPrimary) return runClusterMaster(workers);
  const app = setupApp(await NestFactory.create(AppModule.forRoot(config)));
  await app.listen(config.port);
  const where = cluster.isWorker ? `worker ${process.pid}` : 'ledger demo';
  const mode = config.hosts
    ? `, several hosts (${config.hosts.strategy}): writes forwarded to the primary host`
    : config.writeCluster
      ? ', writes forwarded to the elected primary'
      : '';
  Logger.log(`${where} on http://localhost:${config.port} (database ${config.databasePath}${mode})`, 'Bootstrap');
}

void bootstrap();
