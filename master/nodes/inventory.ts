import { z } from 'zod';

export const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Accepts aa:bb:.., aa-bb-.., or aabbcc..; returns lower-case colon form, or undefined. */
export function normaliseMac(input: string): string | undefined {
  const hex = input.trim().toLowerCase().replace(/[:-]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

const mac = z.string().transform((s, ctx) => {
  const m = normaliseMac(s);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: 'expected a MAC address like 52:54:00:12:34:56' });
    return z.NEVER;
  }
  return m;
});

const text = z.string().max(256);

/** What the node agent reports (node-images/agent): every field bounded so a bad agent cannot bloat the store. */
export const InventorySchema = z
  .object({
    cpu: z
      .object({ model: text.nullable(), count: z.number().int().min(0).max(4096) })
      .partial()
      .optional(),
    memoryBytes: z
      .number()
      .int()
      .min(0)
      .max(2 ** 53)
      .optional(),
    firmware: z.enum(['bios', 'uefi']).optional(),
    disks: z
      .array(
        z.object({
          name: text,
          sizeBytes: z
            .number()
            .int()
            .min(0)
            .max(2 ** 53),
          serial: text.nullable().optional(),
          model: text.nullable().optional(),
          rotational: z.boolean().nullable().optional(),
        }),
      )
      .max(256)
      .optional(),
    nics: z
      .array(
        z.object({
          name: text,
          mac: text,
          link: z.enum(['up', 'down', 'unknown']).optional(),
          speedMbps: z.number().int().nullable().optional(),
        }),
      )
      .max(64)
      .optional(),
    dmi: z
      .object({
        vendor: text.nullable().optional(),
        product: text.nullable().optional(),
        serial: text.nullable().optional(),
      })
      .optional(),
  })
  .passthrough();

export const EnlistSchema = z.object({
  mac,
  mode: z.string().max(32).optional(),
  inventory: InventorySchema,
});

export type EnlistRequest = z.infer<typeof EnlistSchema>;
export type Inventory = z.infer<typeof InventorySchema>;
