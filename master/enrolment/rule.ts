/**
 * What an enrolment rule is (issue 16): a match on inventory facts and an outcome. Validated once at the
 * API/CLI/console edge into a `RuleSpec`; the matcher (match.ts) only ever sees parsed rules. Errors carry
 * stable codes: RULE_INVALID (a field), RULE_PATTERN_INVALID (a glob/regex), TAG_INVALID (a tag).
 */
import { BMC_ADDRESS_PATTERN, BMC_ADDRESS_PLACEHOLDERS } from './power-outcome.js';
import { z } from 'zod';
import { NODE_ROLE } from '../nodes/service.js';
import { TAG, MAX_TAGS } from '../nodes/tags.js';
import { CorralError } from '../util/errors.js';
import { compilePattern } from './pattern.js';
import { checkNamePattern } from './name-pattern.js';

export const RULE_NAME = /^[a-z0-9][a-z0-9_-]{0,47}$/;
/**
 * The largest limit a rule takes. A limit says "the first N machines of this kind"; a number beyond any
 * real data centre is a typo (or an attempt to overflow a counter), so it is refused rather than stored.
 */
export const MAX_RULE_LIMIT = 100_000;

/** A string fact's test: a glob (`*`, `?`, case-insensitive, whole value) or `/regex/flags`. */
const pattern = z.string().min(1).max(200);

/** Numbers: inclusive bounds, at least one. */
const range = z
  .object({ min: z.number().min(0).max(1e15).optional(), max: z.number().min(0).max(1e15).optional() })
  .strict()
  .refine((r) => r.min !== undefined || r.max !== undefined, 'give min, max or both')
  .refine((r) => r.min === undefined || r.max === undefined || r.min <= r.max, 'min is above max');

/** A MAC or a prefix of one (an OUI is the first three octets): hex pairs, `:` or `-` between them. */
const macPrefix = z
  .string()
  .regex(/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){0,5}$/, 'expected a MAC or a prefix of one, e.g. 52:54:00')
  .transform((s) => s.toLowerCase().replace(/-/g, ':'));

const cidr = z
  .string()
  .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'expected an IPv4 subnet such as 10.0.2.0/24');

export const RuleMatchSchema = z
  .object({
    /** Any of these MACs or prefixes (the boot MAC or any NIC's). */
    mac: z.array(macPrefix).min(1).max(64).optional(),
    vendor: pattern.optional(),
    product: pattern.optional(),
    serial: pattern.optional(),
    cpuModel: pattern.optional(),
    cpuCount: range.optional(),
    memoryGiB: range.optional(),
    diskCount: range.optional(),
    /** The largest disk's size. */
    diskGiB: range.optional(),
    nicCount: range.optional(),
    /** The fastest NIC's link speed. */
    nicSpeedMbps: range.optional(),
    firmware: z.enum(['bios', 'uefi']).optional(),
    /** The node already carries every one of these tags (set by hand before `apply`). */
    tags: z
      .array(z.string().regex(TAG, 'must be 1-32 lower-case letters, digits, -, _, . or :'))
      .min(1)
      .max(MAX_TAGS)
      .optional(),
    /** The node's recorded address (its DHCP lease: the local segment or a relay's subnet) is in one of these. */
    subnet: z.array(cidr).min(1).max(32).optional(),
  })
  .strict();

export const RuleActionSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('wait') }).strict(),
  z
    .object({
      type: z.literal('deploy'),
      image: z.string().min(1).max(64),
      layout: z.string().min(1).max(32).optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('diskless'),
      root: z.string().min(1).max(64),
      persistent: z.boolean().optional(),
    })
    .strict(),
]);

export const RuleOutcomeSchema = z
  .object({
    /** Name pattern (name-pattern.ts): `{n}`, `{seq}`, `{mac}`, `{vendor}`, `{product}`, `{serial}`. */
    name: z.string().min(1).max(63).optional(),
    role: z.string().regex(NODE_ROLE, 'must be 1-32 lower-case letters, digits, - or _').optional(),
    tags: z
      .array(z.string().regex(TAG, 'must be 1-32 lower-case letters, digits, -, _, . or :'))
      .max(MAX_TAGS)
      .optional(),
    /**
     * Power-driver default for the machines it catches: Wake-on-LAN (to the node's own MAC), manual, or a
     * BMC driver (ipmi, redfish, auto) whose address is a pattern over the machine's facts
     * (power-outcome.ts: `10.0.5.{ip4}`, `idrac-{serial}`) with the rule's credentials. The password is
     * write-only: sealed when the rule is saved (`passwordSealed`), never stored or shown in clear.
     */
    power: z
      .union([
        z.object({ driver: z.enum(['wol', 'manual']) }).strict(),
        z
          .object({
            driver: z.enum(['ipmi', 'redfish', 'auto']),
            address: z
              .string()
              .max(253)
              .regex(
                BMC_ADDRESS_PATTERN,
                `must be a host name or address, with placeholders ${BMC_ADDRESS_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}`,
              ),
            port: z.number().int().min(1).max(65535).optional(),
            username: z.string().min(1).max(64),
            password: z.string().min(1).max(128).optional(),
            passwordSealed: z.string().max(1024).optional(),
          })
          .strict(),
      ])
      .optional(),
    action: RuleActionSchema.default({ type: 'wait' }),
  })
  .strict();

export const RuleSpecSchema = z
  .object({
    name: z.string().regex(RULE_NAME, 'must be 1-48 lower-case letters, digits, - or _'),
    enabled: z.boolean().default(true),
    limit: z.number().int().min(1).max(MAX_RULE_LIMIT).nullable().default(null),
    match: RuleMatchSchema.default({}),
    outcome: RuleOutcomeSchema.default({ action: { type: 'wait' } }),
  })
  .strict();

export type RuleMatch = z.infer<typeof RuleMatchSchema>;
export type RuleOutcome = z.infer<typeof RuleOutcomeSchema>;
export type RuleAction = z.infer<typeof RuleActionSchema>;
export type RuleSpec = z.infer<typeof RuleSpecSchema>;

/** The string facts a rule tests with a pattern. */
export const PATTERN_FIELDS = ['vendor', 'product', 'serial', 'cpuModel'] as const;

/**
 * Parses a rule from outside (API body, CLI, console form). Every problem is one CorralError naming the
 * field: RULE_INVALID for shapes and bounds, RULE_PATTERN_INVALID for a glob or regex JavaScript refuses,
 * TAG_INVALID for a tag, so a client can tell them apart.
 */
export function parseRuleSpec(input: unknown): RuleSpec {
  const r = RuleSpecSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue?.path.join('.') ?? '';
    const code = /^(outcome|match)\.tags/.test(path) ? 'TAG_INVALID' : 'RULE_INVALID';
    throw new CorralError(code, `${path || 'rule'}: ${issue?.message ?? 'invalid'}`, {
      issues: r.error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  const spec = r.data;
  for (const f of PATTERN_FIELDS) {
    const p = spec.match[f];
    if (p !== undefined) compilePattern(p, `match.${f}`);
  }
  for (const s of spec.match.subnet ?? []) {
    const [addr = '', bits = ''] = s.split('/');
    if (addr.split('.').some((o) => Number(o) > 255) || Number(bits) > 32) {
      throw new CorralError('RULE_INVALID', `match.subnet: ${s} is not an IPv4 subnet`);
    }
  }
  if (spec.outcome.name !== undefined) checkNamePattern(spec.outcome.name);
  return spec;
}
