/**
 * Pure formatting for the console's views (registered as Handlebars helpers in render.ts). They take
 * plain values and return plain strings; escaping is the template's job.
 */

const IEC_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/**
 * Binary (IEC) units, as `lsblk` and `free -h` print them: 536870912 → "512 MiB", 1.5 GiB → "1.5 GiB".
 * One decimal below 10 units, none above, and never a trailing ".0".
 */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < IEC_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const rounded = value < 10 && unit > 0 ? Math.round(value * 10) / 10 : Math.round(value);
  return `${rounded} ${IEC_UNITS[unit]}`;
}

/** "2025-03-01 14:05:09 UTC": the appliance's logs are UTC, so the console is too. */
export function formatTimestamp(iso: string | null | undefined): string {
  if (!iso) return '—';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; older than 30 days: the date. */
export function formatRelative(iso: string | null | undefined, nowMs: number): string {
  if (!iso) return 'never';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const seconds = Math.round((nowMs - ms) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  let text: string;
  if (s < 10) return 'just now';
  else if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h`;
  else if (s < 30 * 86400) text = `${Math.floor(s / 86400)} d`;
  else return new Date(ms).toISOString().slice(0, 10);
  return future ? `in ${text}` : `${text} ago`;
}

/** Link speed as ethtool reports it in Mb/s: 1000 → "1 Gb/s", 100 → "100 Mb/s", 25000 → "25 Gb/s". */
export function formatSpeed(mbps: number | null | undefined): string {
  if (mbps === null || mbps === undefined || !Number.isFinite(mbps) || mbps <= 0) return '—';
  return mbps >= 1000 ? `${Math.round(mbps / 100) / 10} Gb/s` : `${mbps} Mb/s`;
}

/** "1 node", "3 nodes". */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}
