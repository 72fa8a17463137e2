import type { ModuleRef } from '@nestjs/core';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { InvalidOptionsError } from './errors';

/**
 * @internal Finds the DataSource a coordinator serialises: the given instance, or the one
 * `TypeOrmModule.forRoot({ name })` registered under that name (the default one when omitted).
 *
 * @throws {InvalidOptionsError} when it does not exist (the attachment refuses one not initialised).
 */
export function resolveDataSource(moduleRef: ModuleRef, given: DataSource | string | undefined): DataSource {
  if (given instanceof DataSource) return given;
  let found: unknown;
  try {
    found = moduleRef.get(getDataSourceToken(given), { strict: false });
  } catch {
    found = undefined;
  }
  if (!(found instanceof DataSource)) {
    throw new InvalidOptionsError(
      'dataSource',
      given === undefined
        ? 'given, or a default DataSource registered with TypeOrmModule.forRoot()'
        : `the name of a DataSource registered with TypeOrmModule.forRoot({ name: '${given}' })`,
      given,
    );
  }
  return found;
}
