/**
 * The Settings page's view of the effective configuration: the frozen config flattened to one row per key,
 * with secrets replaced (by key, and any value the process registered as secret).
 */

import { isSecretKey, processRedactor, REDACTED } from '../master/util/redact.js';

// The rule itself lives in master/util/redact.ts, shared with diffs, logs and API responses.
export { isSecretKey, REDACTED };

export interface SettingRow {
  key: string;
  value: string;
  redacted: boolean;
}

export interface SettingSection {
  name: string;
  rows: SettingRow[];
}

function flatten(prefix: string, value: unknown, rows: SettingRow[]): void {
  const leafName = prefix.slice(prefix.lastIndexOf('.') + 1);
  if (isSecretKey(leafName) && value !== undefined && value !== null && value !== '') {
    rows.push({ key: prefix, value: REDACTED, redacted: true });
    return;
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (!entries.length) rows.push({ key: prefix, value: '{}', redacted: false });
    for (const [k, v] of entries) flatten(`${prefix}.${k}`, v, rows);
    return;
  }
  if (Array.isArray(value) && value.some((v) => v !== null && typeof v === 'object')) {
    if (!value.length) rows.push({ key: prefix, value: '[]', redacted: false });
    value.forEach((v, i) => flatten(`${prefix}[${i}]`, v, rows));
    return;
  }
  const text = typeof value === 'string' ? processRedactor.text(value) : JSON.stringify(value ?? null);
  rows.push({ key: prefix, value: text, redacted: text !== value && typeof value === 'string' });
}

/** One section per top-level key (scalars at the top level go to "general"), keys in config order. */
export function settingSections(config: Readonly<Record<string, unknown>>): SettingSection[] {
  const general: SettingRow[] = [];
  const sections: SettingSection[] = [];
  for (const [name, value] of Object.entries(config)) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const rows: SettingRow[] = [];
      flatten(name, value, rows);
      sections.push({ name, rows });
    } else flatten(name, value, general);
  }
  return general.length ? [{ name: 'general', rows: general }, ...sections] : sections;
}
