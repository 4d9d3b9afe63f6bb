/**
 * The rollout as a picture (issue 21): one row per instance slot, one column per observation (a moment
 * the engine's tasks changed), each cell coloured by the version that slot ran then, faded when the task
 * was not running (starting, failed, shut down). Pure: observations in, SVG text out (escaped).
 */
import type { AppObservation } from '../store/apps.js';

const CELL_W = 14;
const CELL_H = 18;
const LEFT = 60;
const TOP = 20;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A hue per version, far apart for neighbours (golden-angle steps), so v1 → v2 is visible at a glance. */
export function versionColour(version: number | null): string {
  if (version === null) return '#999999';
  return `hsl(${Math.round((version * 137.508) % 360)}, 65%, 45%)`;
}

export function rolloutSvg(observations: readonly AppObservation[], maxColumns = 80): string {
  const times = [...new Set(observations.map((o) => o.at))].slice(-maxColumns);
  const slots = [...new Set(observations.map((o) => o.slot))].sort((a, b) => a - b);
  const width = LEFT + Math.max(1, times.length) * CELL_W + 10;
  const height = TOP + Math.max(1, slots.length) * CELL_H + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="rollout" role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>Versions per instance over time</title>`,
  ];
  slots.forEach((slot, row) => {
    parts.push(`<text x="4" y="${TOP + row * CELL_H + 13}" font-size="11">instance ${slot}</text>`);
  });
  const at = new Map(observations.map((o) => [`${o.at}|${o.slot}`, o]));
  const versions = new Set<number | null>();
  times.forEach((t, col) => {
    slots.forEach((slot, row) => {
      const o = at.get(`${t}|${slot}`);
      if (!o) return;
      versions.add(o.version);
      const running = o.state === 'running';
      parts.push(
        `<rect x="${LEFT + col * CELL_W}" y="${TOP + row * CELL_H}" width="${CELL_W - 2}" height="${CELL_H - 2}" ` +
          `fill="${versionColour(o.version)}" fill-opacity="${running ? 1 : 0.3}" data-version="${o.version ?? ''}" data-state="${esc(o.state)}">` +
          `<title>${esc(`${t} instance ${slot}: v${o.version ?? '?'} ${o.state}${o.node ? ` on ${o.node}` : ''}`)}</title></rect>`,
      );
    });
  });
  [...versions].forEach((v, i) => {
    const x = LEFT + i * 60;
    const y = TOP + slots.length * CELL_H + 10;
    parts.push(`<rect x="${x}" y="${y}" width="10" height="10" fill="${versionColour(v)}"/>`);
    parts.push(`<text x="${x + 14}" y="${y + 9}" font-size="11">v${v ?? '?'}</text>`);
  });
  if (times.length > 0) {
    parts.push(`<text x="${LEFT}" y="12" font-size="10">${esc(times[0]!)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n');
}
