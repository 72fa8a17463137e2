import { ConfigurableModuleBuilder, DynamicModule, Provider } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, MetadataScanner, ModuleRef } from '@nestjs/core';
import type { EventEmitter2 } from '@nestjs/event-emitter';
import { InvalidOptionsError } from './errors';
import { eventEmitterToken } from './optional-event-emitter';
import { terminusHealthIndicatorService } from './optional-terminus';
import { getWriteCoordinatorToken } from './decorators/inject-write-coordinator.decorator';
import { SerializedWriteExplorer } from './write-coordinator.explorer';
import { UniqueNameCheck } from './write-coordinator.name-check';
import { DEFAULT_COORDINATOR_NAME, HEALTH_INDICATOR_SERVICE, RESOLVED_OPTIONS } from './write-coordinator.constants';
import { WriteCoordinatorHealthIndicator } from './write-coordinator.health';
import { WriteCoordinatorShutdown } from './write-coordinator.shutdown';
import {
  resolveWriteCoordinatorOptions,
  ResolvedWriteCoordinatorOptions,
  WriteCoordinatorOptions,
} from './core/coordinator-options';
import { WriteCoordinator } from './write-coordinator.service';

/** Options the `forRootAsync()` factory returns: everything but the static `name` and `isGlobal`. */
export type WriteCoordinatorFactoryOptions = Omit<WriteCoordinatorOptions, 'name' | 'isGlobal'>;

/** Static extras: they shape the module itself (tokens, scope), so they are never async. */
interface WriteCoordinatorExtras {
  name: string;
  isGlobal: boolean;
}

export const {
  ConfigurableModuleClass: WriteCoordinatorConfigurableModule,
  MODULE_OPTIONS_TOKEN: WRITE_COORDINATOR_MODULE_OPTIONS,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<WriteCoordinatorFactoryOptions>({ moduleName: 'WriteCoordinator' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createWriteCoordinatorOptions')
  .setExtras<WriteCoordinatorExtras>({ name: DEFAULT_COORDINATOR_NAME, isGlobal: false }, withCoordinatorProviders)
  .build();

/** Options of `WriteCoordinatorModule.forRootAsync()`. */
export type WriteCoordinatorModuleAsyncOptions = typeof ASYNC_OPTIONS_TYPE;

/** Implemented by a class given as `useClass` / `useExisting` to `forRootAsync()`. */
export interface WriteCoordinatorOptionsFactory {
  createWriteCoordinatorOptions(): WriteCoordinatorFactoryOptions | Promise<WriteCoordinatorFactoryOptions>;
}

/** Adds one coordinator's providers; each `forRoot` call is a module instance of its own. */
function withCoordinatorProviders(definition: DynamicModule, extras: WriteCoordinatorExtras): DynamicModule {
  const { name, isGlobal } = resolveWriteCoordinatorOptions({ name: extras.name, isGlobal: extras.isGlobal });
  const token = getWriteCoordinatorToken(name);
  const explorer = Symbol(`write-coordinator:explorer:${name}`);
  // Events are optional: without @nestjs/event-emitter installed there is no token to ask for.
  const emitterToken = eventEmitterToken();
  // The health indicator is optional too: without @nestjs/terminus it is provided, but cannot answer.
  const healthIndicatorService = terminusHealthIndicatorService();
  const providers: Provider[] = [
    {
      provide: RESOLVED_OPTIONS,
      useFactory: (raw: WriteCoordinatorOptions = {}) => {
        for (const [field, value] of Object.entries({ name, isGlobal })) {
          const returned = raw[field as 'name' | 'isGlobal'];
          if (returned !== undefined && returned !== value) {
            throw new InvalidOptionsError(field, `given statically, as forRootAsync({ ${field}: ... })`, returned);
          }
        }
        return resolveWriteCoordinatorOptions({ ...raw, name, isGlobal });
      },
      inject: [WRITE_COORDINATOR_MODULE_OPTIONS],
    },
    {
      provide: token,
      useFactory: (options: ResolvedWriteCoordinatorOptions, moduleRef: ModuleRef, emitter?: EventEmitter2) =>
        new WriteCoordinator(options, moduleRef, emitter),
      inject: [RESOLVED_OPTIONS, ModuleRef, ...(emitterToken ? [{ token: emitterToken, optional: true }] : [])],
    },
    {
      provide: explorer,
      useFactory: (discovery: DiscoveryService, scanner: MetadataScanner, coordinator: WriteCoordinator) =>
        new SerializedWriteExplorer(discovery, scanner, coordinator),
      inject: [DiscoveryService, MetadataScanner, token],
    },
    {
      provide: Symbol(`write-coordinator:name-check:${name}`),
      useFactory: (moduleRef: ModuleRef) => new UniqueNameCheck(moduleRef, token, name),
      inject: [ModuleRef],
    },
    ...(healthIndicatorService ? [{ provide: HEALTH_INDICATOR_SERVICE, useClass: healthIndicatorService }] : []),
    WriteCoordinatorShutdown,
    WriteCoordinatorHealthIndicator,
  ];
  return {
    ...definition,
    global: isGlobal,
    imports: [...(definition.imports ?? []), DiscoveryModule],
    providers: [...(definition.providers ?? []), ...providers],
    exports: [...(definition.exports ?? []), token, WriteCoordinatorHealthIndicator],
  };
}
