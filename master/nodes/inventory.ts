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
const name = z.string().min(1).max(64);
const bytes = z
  .number()
  .int()
  .min(0)
  .max(2 ** 53);

/**
 * The body of POST /api/v1/enlist is at most this many bytes (v1.ts gives express.json this limit for the
 * route). The real agent's report (node-images/agent/corral-agent) is about 1 KiB for a node with a few
 * disks and NICs; 64 KiB leaves room for 128 disks and 64 NICs with long model strings.
 */
export const ENLIST_BODY_LIMIT_BYTES = 64 * 1024;

/**
 * What the node agent reports (node-images/agent/corral-agent `inventory`): exactly these fields, every
 * one bounded, no others (`.strict()` everywhere: unknown fields are refused, not stored), so an
 * unauthenticated sender cannot make the store grow by more than a bounded row per admitted MAC. Fields
 * the agent prints as `null` when a file is missing (no /proc/meminfo, no model) are nullable.
 */
export const InventorySchema = z
  .object({
    cpu: z
      .object({ model: text.nullable(), count: z.number().int().min(0).max(4096).nullable() })
      .partial()
      .strict()
      .optional(),
    memoryBytes: bytes.nullable().optional(),
    firmware: z.enum(['bios', 'uefi']).optional(),
    /** Secure Boot enforced by the firmware (issue 18); null on BIOS or when the node could not tell. */
    secureBoot: z.boolean().nullable().optional(),
    disks: z
      .array(
        z
          .object({
            name,
            sizeBytes: bytes,
            serial: text.nullable().optional(),
            model: text.nullable().optional(),
            rotational: z.boolean().nullable().optional(),
          })
          .strict(),
      )
      .max(128)
      .optional(),
    nics: z
      .array(
        z
          .object({
            name,
            mac: z.string().max(64).nullable(),
            link: z.enum(['up', 'down', 'unknown']).optional(),
            speedMbps: z.number().int().min(0).max(10_000_000).nullable().optional(),
          })
          .strict(),
      )
      .max(64)
      .optional(),
    dmi: z
      .object({
        vendor: text.nullable().optional(),
        product: text.nullable().optional(),
        serial: text.nullable().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** The agent's modes (the kernel's corral.mode): it enlists in each to refresh its credential. */
export const AGENT_MODES = ['discover', 'install', 'sharedroot'] as const;

export const EnlistSchema = z
  .object({
    mac,
    mode: z.enum(AGENT_MODES).optional(),
    inventory: InventorySchema,
  })
  .strict();

export type EnlistRequest = z.infer<typeof EnlistSchema>;
export type Inventory = z.infer<typeof InventorySchema>;
