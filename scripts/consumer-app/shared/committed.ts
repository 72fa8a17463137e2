import Database from 'better-sqlite3';

/** Every deposit the database holds, and the account's balance. */
export interface Committed {
  refs: string[];
  balance: number;
}

/** What the database file holds, through a fresh read-only connection (after the app closed). */
export function readCommitted(database: string): Committed {
  const db = new Database(database, { readonly: true });
  try {
    const refs = db.prepare('SELECT ref FROM deposits ORDER BY id').all() as Array<{ ref: string }>;
    const account = db.prepare('SELECT balance FROM accounts WHERE id = 1').get() as { balance: number };
    return { refs: refs.map((r) => r.ref), balance: account.balance };
  } finally {
    db.close();
  }
}
