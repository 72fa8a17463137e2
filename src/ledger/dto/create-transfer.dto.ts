import { IsInt, Max, Min } from 'class-validator';

/** Body of `POST /transfers`. */
export class CreateTransferDto {
  @IsInt()
  @Min(1)
  fromId!: number;

  @IsInt()
  @Min(1)
  toId!: number;

  /** Amount in cents. */
  @IsInt()
  @Min(1)
  @Max(1_000_000_000)
  amount!: number;
}
