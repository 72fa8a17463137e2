import { Logger, OnModuleInit } from '@nestjs/common';
import type { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { AttachedCoordinators, SerializedWriteMetadata } from './decorators/serialized-write.decorator';
import {
  ATTACHED_COORDINATORS,
  SERIALIZED_WRITE_METADATA,
  WRITE_HANDLER_METADATA,
} from './write-coordinator.constants';
import type { WriteCoordinator } from './write-coordinator.service';
import type { WriteHandlerMetadata } from './decorators/write-handler.decorator';

/**
 * @internal At bootstrap, finds providers and controllers with `@SerializedWrite` methods for this
 * module's coordinator and attaches it to them, and registers its `@WriteHandler` methods.
 */
export class SerializedWriteExplorer implements OnModuleInit {
  private readonly logger = new Logger('WriteCoordinatorExplorer');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly coordinator: WriteCoordinator,
  ) {}

  onModuleInit(): void {
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      // A transient provider's tree may be static, yet every consumer gets its own instance: like a
      // request-scoped one, it has no single instance to attach to.
      const isStatic = wrapper.isDependencyTreeStatic() && !wrapper.isTransient;
      const instance: unknown = isStatic ? wrapper.instance : undefined;
      const prototype: unknown = isStatic
        ? instance && Object.getPrototypeOf(instance)
        : (wrapper.metatype as { prototype?: unknown } | undefined)?.prototype;
      if (!prototype || typeof prototype !== 'object') continue;
      this.explore(prototype, isStatic ? (instance as object) : (prototype as object), isStatic, wrapper.name);
    }
  }

  /** Request- and transient-scoped providers have no single instance: attach to their prototype. */
  private explore(prototype: object, target: object, isStatic: boolean, providerName: string): void {
    const name = this.coordinator.name;
    let serialized = false;
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method = (prototype as Record<string, unknown>)[methodName];
      if (typeof method !== 'function') continue;
      const write = Reflect.getMetadata(SERIALIZED_WRITE_METADATA, method) as SerializedWriteMetadata | undefined;
      if (write?.coordinator === name) {
        serialized = true;
        if (write.forward) this.registerForwardable(write.forward, target, isStatic, `${providerName}.${methodName}`);
      }
      const handler = Reflect.getMetadata(WRITE_HANDLER_METADATA, method) as WriteHandlerMetadata | undefined;
      if (handler?.coordinator !== name) continue;
      const origin = `${providerName}.${methodName}`;
      if (!isStatic) {
        this.logger.warn(`@WriteHandler on ${origin} ignored: handlers must live on singleton providers`);
        continue;
      }
      this.coordinator.registerHandler(
        handler.method,
        (params, manager) => method.call(target, params, manager),
        origin,
        handler.validate,
      );
    }
    if (serialized) this.attach(target);
  }

  /** A forwardable method runs on the primary's single instance of its provider. */
  private registerForwardable(
    forward: NonNullable<SerializedWriteMetadata['forward']>,
    target: object,
    isStatic: boolean,
    origin: string,
  ): void {
    if (!isStatic) {
      this.logger.warn(
        `@SerializedWrite({ forward: true }) on ${origin} runs locally: only singleton providers can be forwarded to`,
      );
      return;
    }
    this.coordinator.registerForwardable(forward.name, (args) => forward.method.apply(target, args), origin);
  }

  private attach(target: object): void {
    let attached = (target as { [ATTACHED_COORDINATORS]?: AttachedCoordinators })[ATTACHED_COORDINATORS];
    if (!attached || !Object.prototype.hasOwnProperty.call(target, ATTACHED_COORDINATORS)) {
      attached = new Map(attached);
      Object.defineProperty(target, ATTACHED_COORDINATORS, { value: attached, enumerable: false, configurable: true });
    }
    attached.set(this.coordinator.name, this.coordinator);
  }
}
