import { appendFileSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The role file the controller writes and the agent (`agent.cjs`) reads before every write. */
export const ROLE_FILE = '.stand-in-role';
/** One JSON line per committed transaction, appended by the agent on the primary. */
export const TX_LOG = '.stand-in-txlog';

/** A node's replication position: the `-pos` file's `TXID/checksum`. */
export interface Position {
  /** The TXID of the last transaction applied on the node. */
  txID: number;
  /** 16 lowercase hex digits. */
  checksum: string;
}

/** The data of a LiteFS `tx` event (and of one line of the tx log). */
export interface TxData {
  txID: string;
  postApplyChecksum: string;
  pageSize: number;
  commit: number;
  timestamp: string;
}

const POS = /^([0-9a-f]{16})\/([0-9a-f]{16})\n?$/;

/** 16 lowercase hex digits of a TXID, as LiteFS writes them. */
export const hexTxID = (txID: number): string => txID.toString(16).padStart(16, '0');

/** `TXID/checksum\n`, the content of a `-pos` file. */
export const formatPosition = (position: Position): string => `${hexTxID(position.txID)}/${position.checksum}\n`;

/**
 * Parses a `-pos` file's content.
 *
 * @throws {Error} if it is not `TXID/checksum` in 16 hex digits each.
 */
export function parsePosition(text: string): Position {
  const match = POS.exec(text);
  if (!match) throw new Error(`litefs stand-in: malformed -pos content ${JSON.stringify(text)}`);
  return { txID: Number.parseInt(match[1], 16), checksum: match[2] };
}

/**
 * The files of one node's mount directory, as LiteFS shows them to the application, plus the
 * stand-in's role file and tx log.
 */
export class NodeFiles {
  /** The `-pos` file of the database. */
  readonly posPath: string;
  /** The `.primary` file (present only on a connected replica). */
  readonly primaryPath: string;
  private readonly rolePath: string;
  private readonly txLogPath: string;
  /** Bytes of the tx log already read by {@link readTxLog}. */
  private txLogOffset = 0;

  constructor(
    readonly mountDir: string,
    database: string,
  ) {
    this.posPath = join(mountDir, `${database}-pos`);
    this.primaryPath = join(mountDir, '.primary');
    this.rolePath = join(mountDir, ROLE_FILE);
    this.txLogPath = join(mountDir, TX_LOG);
  }

  /** The node's position now. */
  position(): Position {
    return parsePosition(readFileSync(this.posPath, 'utf8'));
  }

  /** Replaces `-pos` atomically (a reader sees the old or the new content, never a mix). */
  setPosition(position: Position): void {
    const temp = join(this.mountDir, '.stand-in-pos.controller.tmp');
    writeFileSync(temp, formatPosition(position));
    renameSync(temp, this.posPath);
  }

  /** Tells the agent in the node's processes whether writes are allowed. */
  setRole(role: 'primary' | 'replica'): void {
    const temp = join(this.mountDir, '.stand-in-role.tmp');
    writeFileSync(temp, `${role}\n`);
    renameSync(temp, this.rolePath);
  }

  /** Writes `.primary` (the primary's hostname), or removes it when `hostname` is undefined. */
  setPrimaryFile(hostname: string | undefined): void {
    if (hostname === undefined) {
      rmSync(this.primaryPath, { force: true });
      return;
    }
    const temp = join(this.mountDir, '.primary.tmp');
    writeFileSync(temp, `${hostname}\n`);
    renameSync(temp, this.primaryPath);
  }

  /** Creates an empty tx log, or skips what an existing one holds: only later lines are read. */
  startTxLog(): void {
    if (!existsSync(this.txLogPath)) appendFileSync(this.txLogPath, '');
    this.txLogOffset = statSync(this.txLogPath).size;
  }

  /** The complete lines appended to the tx log since the last call. */
  readTxLog(): TxData[] {
    const size = statSync(this.txLogPath).size;
    if (size <= this.txLogOffset) return [];
    const text = readFileSync(this.txLogPath).subarray(this.txLogOffset, size).toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) return [];
    this.txLogOffset += Buffer.byteLength(text.slice(0, end + 1));
    return text
      .slice(0, end)
      .split('\n')
      .map((line) => JSON.parse(line) as TxData);
  }
}
