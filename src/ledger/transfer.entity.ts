import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** One committed movement of money between two accounts. */
@Entity('transfers')
export class Transfer {
  @PrimaryGeneratedColumn()
  id!: number;

  @Index()
  @Column({ type: 'integer' })
  fromId!: number;

  @Index()
  @Column({ type: 'integer' })
  toId!: number;

  @Column({ type: 'integer' })
  amount!: number;

  @CreateDateColumn()
  createdAt!: Date;
}
