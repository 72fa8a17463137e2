/**
 * @internal Loads an optional peer dependency (`@nestjs/event-emitter`, `@nestjs/terminus`), or
 * returns undefined when it is not installed. Only the package's own absence counts as "not
 * installed": any other failure (a broken install, a missing dependency of the package) is thrown,
 * so it never passes silently.
 *
 * A static import would make the package required; `require` resolves it from this library's
 * location, as the package's own dependencies would be.
 */
export function loadOptionalPackage<T>(name: string): T | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch (error) {
    if (isNotFound(error, name)) return undefined;
    throw error;
  }
}

/** Whether `error` says that the package itself (not one of its dependencies) cannot be found. */
function isNotFound(error: unknown, name: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (
    (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') &&
    typeof message === 'string' &&
    message.includes(`'${name}'`)
  );
}
