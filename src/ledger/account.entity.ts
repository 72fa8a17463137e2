import { Check, Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** An account; balances are integers (cents) and never negative. */
@Entity('accounts')
@Check('"balance" >= 0')
export class Account {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 100, unique: true })
  name!: string;

  @Column({ type: 'integer' })
  balance!: number;
}
