import { WriteCoordinatorError } from '../errors';

/** The code reported for a failure that is not a `WriteCoordinatorError` (what the work threw). */
export const UNCODED = 'UNCODED';

/** @internal The code metrics and spans report for `error`: its `code`, or {@link UNCODED}. */
export function codeOf(error: unknown): string {
  return error instanceof WriteCoordinatorError ? error.code : UNCODED;
}
