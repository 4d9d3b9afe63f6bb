/**
 * A rule's name pattern: `web-{n}`, `{vendor}-{serial}`, `rack2-{seq}`. Placeholders: `{n}` the how-many-th
 * machine this rule caught (1, 2, ...), `{seq}` the node's sequence number, `{mac}` its MAC without
 * separators, `{vendor}`, `{product}`, `{serial}` from its DMI data. Inventory strings are folded into a
 * DNS label (RFC 1123 §2.1): lower case, anything else becomes `-`, at most 63 characters. Pure.
 */
import { NODE_NAME } from '../nodes/service.js';
import { CorralError } from '../util/errors.js';

export const NAME_PLACEHOLDERS = ['n', 'seq', 'mac', 'vendor', 'product', 'serial'] as const;
export type NamePlaceholder = (typeof NAME_PLACEHOLDERS)[number];
export type NameValues = Partial<Record<NamePlaceholder, string | number | null | undefined>>;

const PLACEHOLDER = /\{([a-z]+)\}/g;

/** Folds an inventory string into label characters (`Dell Inc.` → `dell-inc`). */
export function labelPart(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Refuses a pattern with an unknown placeholder or characters a node name cannot hold (RULE_INVALID). */
export function checkNamePattern(pattern: string): void {
  for (const m of pattern.matchAll(PLACEHOLDER)) {
    if (!(NAME_PLACEHOLDERS as readonly string[]).includes(m[1] ?? '')) {
      throw new CorralError(
        'RULE_INVALID',
        `outcome.name: unknown placeholder {${m[1]}} (known: ${NAME_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`,
      );
    }
  }
  const literal = pattern.replace(PLACEHOLDER, '');
  if (!/^[a-z0-9-]*$/.test(literal)) {
    throw new CorralError(
      'RULE_INVALID',
      `outcome.name: '${pattern}' may hold only lower-case letters, digits, - and placeholders`,
    );
  }
}

/**
 * The name for a node, or undefined when the pattern yields no valid label (a placeholder whose fact the
 * node lacks, say `{serial}` on a machine without DMI data): the caller keeps the node's current name.
 */
export function renderName(pattern: string, values: NameValues): string | undefined {
  let missing = false;
  const name = pattern.replace(PLACEHOLDER, (_m, key: string) => {
    const v = values[key as NamePlaceholder];
    const part = v === null || v === undefined ? '' : labelPart(String(v));
    if (!part) missing = true;
    return part;
  });
  const trimmed = name.slice(0, 63).replace(/-+$/, '');
  return !missing && NODE_NAME.test(trimmed) ? trimmed : undefined;
}
