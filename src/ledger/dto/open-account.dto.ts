import { IsInt, IsString, Length, Max, Min } from 'class-validator';

/** Body of `POST /accounts`. */
export class OpenAccountDto {
  @IsString()
  @Length(1, 100)
  name!: string;

  /** Opening balance in cents. */
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  initialBalance!: number;
}
