import { Inject } from '@nestjs/common';
import { DEFAULT_COORDINATOR_NAME } from '../write-coordinator.constants';
import { WriteCoordinator } from '../write-coordinator.service';

/**
 * The injection token of a coordinator: the `WriteCoordinator` class for the default one, a
 * string for a named one. Useful with `moduleRef.get()` and `Test.createTestingModule()`.
 */
export function getWriteCoordinatorToken(name: string = DEFAULT_COORDINATOR_NAME): string | typeof WriteCoordinator {
  return name === DEFAULT_COORDINATOR_NAME ? WriteCoordinator : `WriteCoordinator:${name}`;
}

/**
 * Injects the coordinator registered under `name` (the default one when omitted).
 *
 * @example
 * constructor(@InjectWriteCoordinator('audit') private readonly audit: WriteCoordinator) {}
 */
export function InjectWriteCoordinator(
  name: string = DEFAULT_COORDINATOR_NAME,
): PropertyDecorator & ParameterDecorator {
  return Inject(getWriteCoordinatorToken(name));
}
