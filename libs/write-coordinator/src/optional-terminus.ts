import type { HealthIndicatorService } from '@nestjs/terminus';
import { loadOptionalPackage } from './optional-package';

/**
 * @internal Terminus's `HealthIndicatorService` class (what `WriteCoordinatorHealthIndicator` builds
 * its results with), or undefined when `@nestjs/terminus` is not installed. The health indicator is
 * optional, so the package is loaded here, lazily, and nowhere else at run time: every other file
 * imports only its types.
 *
 * @throws whatever loading the package throws, except its absence (a broken install must not pass silently).
 */
export function terminusHealthIndicatorService(): typeof HealthIndicatorService | undefined {
  return loadOptionalPackage<typeof import('@nestjs/terminus')>('@nestjs/terminus')?.HealthIndicatorService;
}
