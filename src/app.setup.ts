import { INestApplication, ValidationPipe } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { WriteCoordinatorExceptionFilter } from 'nestjs-sqlite-write-coordinator';

/** HTTP-level set-up shared by `main.ts` and the e2e tests. */
export function setupApp(app: INestApplication): INestApplication {
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.useGlobalFilters(new WriteCoordinatorExceptionFilter(app.get(HttpAdapterHost)));
  app.enableShutdownHooks();
  return app;
}
