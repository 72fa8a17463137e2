import { statementKind } from './sql-statement';

describe('statementKind', () => {
  it.each([
    ['SELECT 1', 'read'],
    ['  with x as (select 1) select * from x', 'read'],
    ['-- comment\n/* block */ SELECT 1', 'read'],
    ['VALUES (1)', 'read'],
    ['EXPLAIN QUERY PLAN SELECT 1', 'read'],
    ['INSERT INTO t VALUES (1)', 'write'],
    ['update t set a = 1', 'write'],
    ['DELETE FROM t', 'write'],
    ['REPLACE INTO t VALUES (1)', 'write'],
    ['CREATE TABLE t (a)', 'write'],
    ['PRAGMA user_version = 3', 'connection'],
    ['VACUUM', 'connection'],
    ["ATTACH 'x.db' AS x", 'connection'],
    ['BEGIN IMMEDIATE', 'transaction'],
    ['commit', 'transaction'],
    ['END TRANSACTION', 'transaction'],
    ['SAVEPOINT a', 'transaction'],
    ['RELEASE a', 'transaction'],
    ['ROLLBACK TO a', 'transaction'],
    ['', 'write'],
    ['   ', 'write'],
  ])('%j is %s', (sql, kind) => {
    expect(statementKind(sql)).toBe(kind);
  });
});
