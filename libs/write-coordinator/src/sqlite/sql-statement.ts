/**
 * @internal What a raw SQL statement issued outside a job needs:
 * - `read`: may be answered by the read-only connection (confirmed there with `stmt.readonly`);
 * - `write`: changes rows; runs as its own job, inside a transaction;
 * - `connection`: changes the writing connection or cannot run inside a transaction (`PRAGMA`,
 *   `VACUUM`, `ATTACH`, `DETACH`); runs as its own job on the writer, with no transaction around it;
 * - `transaction`: transaction control (`BEGIN`, `COMMIT`, `SAVEPOINT`, …), which only makes sense
 *   inside the caller's own transaction.
 */
export type StatementKind = 'read' | 'write' | 'connection' | 'transaction';

const KINDS: Readonly<Record<string, StatementKind>> = {
  select: 'read',
  with: 'read',
  values: 'read',
  explain: 'read',
  pragma: 'connection',
  vacuum: 'connection',
  attach: 'connection',
  detach: 'connection',
  begin: 'transaction',
  commit: 'transaction',
  end: 'transaction',
  rollback: 'transaction',
  savepoint: 'transaction',
  release: 'transaction',
};

/** Leading comments and blanks, then the first keyword. */
const FIRST_KEYWORD = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*([A-Za-z]+)/;

/**
 * @internal The kind of a statement by its first keyword. `read` is only a candidate: a `WITH`
 * can end in an `INSERT`, so the read connection confirms it before answering.
 */
export function statementKind(sql: string): StatementKind {
  const keyword = firstKeyword(sql);
  return (keyword && KINDS[keyword]) || 'write';
}

/** @internal The first keyword of a statement, lower-cased (after leading comments and blanks). */
export function firstKeyword(sql: string): string | undefined {
  return FIRST_KEYWORD.exec(sql)?.[1]?.toLowerCase();
}
