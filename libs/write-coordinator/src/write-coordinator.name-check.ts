import { OnModuleInit } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import { InvalidOptionsError } from './errors';

/**
 * @internal Fails bootstrap when two `WriteCoordinatorModule` registrations use one name: both
 * would export the same token and one coordinator would silently shadow the other.
 */
export class UniqueNameCheck implements OnModuleInit {
  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly token: unknown,
    private readonly name: string,
  ) {}

  onModuleInit(): void {
    const registered = this.moduleRef.get(this.token as string, { strict: false, each: true });
    if (registered.length > 1) {
      throw new InvalidOptionsError('name', 'unique: one WriteCoordinatorModule registration per name', this.name);
    }
  }
}
