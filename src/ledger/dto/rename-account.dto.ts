import { IsString, Length } from 'class-validator';

/** Body of `PATCH /accounts/:id`. */
export class RenameAccountDto {
  @IsString()
  @Length(1, 100)
  name!: string;
}
