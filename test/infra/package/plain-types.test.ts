/**
 * The package's declarations name plain interfaces, not zod's inferred types (which would pull
 * zod's own declarations into every user's compile): these checks, run by `npm run typecheck`,
 * hold each interface to the schema it describes.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { Settings, SettingsInput, SettingsSchema } from '#infra/settings.ts';
import type * as z from '#lib/zod.ts';
import type { ProvisionRequest, ProvisionRequestInput, ProvisionRequestSchema } from '#messages/request.ts';

/** Each type assignable to the other. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

describe('the plain types of the declarations', () => {
  it('SettingsInput has the schema keys, each of a type the schema accepts', () => {
    expectTypeOf<Same<keyof SettingsInput, keyof z.input<typeof SettingsSchema>>>().toEqualTypeOf<true>();
    expectTypeOf<SettingsInput>().toExtend<z.input<typeof SettingsSchema>>();
  });

  it('Settings is what the schema resolves to, createSettleSeconds derived', () => {
    expectTypeOf<
      Same<Settings, z.output<typeof SettingsSchema> & { createSettleSeconds: number }>
    >().toEqualTypeOf<true>();
  });

  it('ProvisionRequest and ProvisionRequestInput are the request schema output and input', () => {
    expectTypeOf<Same<ProvisionRequest, z.output<typeof ProvisionRequestSchema>>>().toEqualTypeOf<true>();
    expectTypeOf<Same<ProvisionRequestInput, z.input<typeof ProvisionRequestSchema>>>().toEqualTypeOf<true>();
  });
});
