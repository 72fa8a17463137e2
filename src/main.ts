import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { setupApp } from './app.setup';
import { loadConfig } from './config';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const app = setupApp(await NestFactory.create(AppModule.forRoot(config)));
  await app.listen(config.port);
  Logger.log(`ledger demo on http://localhost:${config.port} (database ${config.databasePath})`, 'Bootstrap');
}

void bootstrap();
