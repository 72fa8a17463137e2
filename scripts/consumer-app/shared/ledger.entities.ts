import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** The one account every deposit credits. */
@Entity('accounts')
export class Account {
  @PrimaryColumn({ type: 'integer' })
  id!: number;

  @Column({ type: 'integer' })
  balance!: number;
}

/** One acknowledged deposit, with the balance it left. */
@Entity('deposits')
export class Deposit {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', unique: true })
  ref!: string;

  @Column({ type: 'integer' })
  balanceAfter!: number;
}
