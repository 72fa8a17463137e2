import { INestApplication, ValidationPipe } from '@nestjs/common';
import { WriteCoordinatorErrorFilter } from './common/write-coordinator-error.filter';

/** HTTP-level set-up shared by `main.ts` and the e2e tests. */
export function setupApp(app: INestApplication): INestApplication {
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.useGlobalFilters(new WriteCoordinatorErrorFilter());
  app.enableShutdownHooks();
  return app;
}
