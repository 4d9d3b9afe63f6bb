/**
 * A node:test reporter that prints the wall time of each test FILE, slowest first, and the sum per
 * directory (unit / integration / e2e). scripts/test.sh runs it beside the spec reporter, so every CI log
 * says where the suite's time goes (docs/testing.md) instead of leaving it to be reconstructed from
 * test names.
 *
 * The figure is the runner's own: with `--test`, each file is a test of the parent runner, whose
 * `test:complete` event (name = file path, nesting 0) carries the file's duration — process start,
 * imports, file-level hooks and every test in it. With --test-concurrency above 1 files overlap, so the
 * directory sums are CPU-ish totals, not the run's wall time.
 *
 *   node --test --test-reporter=./dist/test/helpers/file-times-reporter.js dist/test/unit/
 */
import { relative, sep } from 'node:path';

/** The part of node:test's reporter events this reporter reads. */
export interface RunnerEvent {
  type: string;
  data?: { name?: unknown; file?: unknown; nesting?: unknown; details?: { duration_ms?: unknown } };
}

export interface FileTime {
  file: string;
  ms: number;
}

/** A file-level completion: the runner names the test after the file, at nesting 0. */
export function fileTimeOf(event: RunnerEvent, cwd: string): FileTime | undefined {
  const d = event.data;
  if (event.type !== 'test:complete' || !d || d.nesting !== 0) return undefined;
  if (typeof d.file !== 'string' || d.name !== d.file) return undefined;
  const ms = d.details?.duration_ms;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return undefined;
  return { file: relative(cwd, d.file), ms };
}

/** `dist/test/e2e/x.test.js` → `e2e`: the directory under the last `test/` (else the first directory). */
export function groupOf(file: string): string {
  const dirs = file.split(sep).slice(0, -1);
  return dirs[dirs.lastIndexOf('test') + 1] ?? '.';
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1).padStart(7)} s`;

export function renderFileTimes(times: readonly FileTime[]): string {
  if (times.length === 0) return 'time per test file: no file completed\n';
  const sorted = [...times].sort((a, b) => b.ms - a.ms || a.file.localeCompare(b.file));
  const total = sorted.reduce((s, t) => s + t.ms, 0);
  const groups = new Map<string, { ms: number; files: number }>();
  for (const t of sorted) {
    const g = groups.get(groupOf(t.file)) ?? { ms: 0, files: 0 };
    g.ms += t.ms;
    g.files += 1;
    groups.set(groupOf(t.file), g);
  }
  const lines = [
    `time per test file (node's runner: process start, hooks and tests), ${sorted.length} files, ${seconds(total).trim()} summed`,
    ...sorted.map((t) => `${seconds(t.ms)}  ${t.file}`),
    ...[...groups]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([g, v]) => `${seconds(v.ms)}  ${g}/ (${v.files} files)`),
  ];
  return `${lines.join('\n')}\n`;
}

export default async function* fileTimesReporter(source: AsyncIterable<RunnerEvent>): AsyncGenerator<string> {
  const times: FileTime[] = [];
  const cwd = process.cwd();
  for await (const event of source) {
    const t = fileTimeOf(event, cwd);
    if (t) times.push(t);
  }
  yield renderFileTimes(times);
}
