/**
 * The per-file time reporter scripts/test.sh runs beside spec: fed synthetic events, and then run by
 * node's own test runner over two temporary test files (a child process, no sockets), so a change in
 * the runner's events shows here rather than as an empty table in CI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fileTimesReporter, {
  fileTimeOf,
  groupOf,
  renderFileTimes,
  type RunnerEvent,
} from '../helpers/file-times-reporter.js';

const fileDone = (file: string, ms: unknown): RunnerEvent => ({
  type: 'test:complete',
  data: { name: file, file, nesting: 0, details: { duration_ms: ms } },
});

function withoutTestContext(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy['NODE_TEST_CONTEXT'];
  return copy;
}

describe('file-times reporter', () => {
  it('takes only the file-level completion, with the path relative to the working directory', () => {
    const f = '/w/dist/test/unit/a.test.js';
    assert.deepEqual(fileTimeOf(fileDone(f, 1234.5), '/w'), { file: 'dist/test/unit/a.test.js', ms: 1234.5 });
    // A top-level test in the file (its own name), a nested one, other event types, no duration.
    const inFile = { name: 'a test', file: f, nesting: 0, details: { duration_ms: 5 } };
    assert.equal(fileTimeOf({ type: 'test:complete', data: inFile }, '/w'), undefined);
    assert.equal(
      fileTimeOf({ type: 'test:complete', data: { ...fileDone(f, 5).data, nesting: 1 } }, '/w'),
      undefined,
    );
    assert.equal(fileTimeOf({ type: 'test:pass', data: fileDone(f, 5).data }, '/w'), undefined);
    assert.equal(
      fileTimeOf({ type: 'test:dequeue', data: { name: f, file: f, nesting: 0 } }, '/w'),
      undefined,
    );
    assert.equal(fileTimeOf(fileDone(f, 'slow'), '/w'), undefined);
    assert.equal(fileTimeOf({ type: 'test:plan' }, '/w'), undefined);
  });

  it('groups by the directory under test/', () => {
    assert.equal(groupOf('dist/test/e2e/lab-deploy.test.js'), 'e2e');
    assert.equal(groupOf('dist/test/integration/sub/x.test.js'), 'integration');
    assert.equal(groupOf('a/p.test.mjs'), 'a');
    assert.equal(groupOf('p.test.mjs'), '.');
  });

  it('renders slowest first, then each directory summed', () => {
    const text = renderFileTimes([
      { file: 'dist/test/unit/u.test.js', ms: 1500 },
      { file: 'dist/test/e2e/v.test.js', ms: 467_049 },
      { file: 'dist/test/unit/w.test.js', ms: 250 },
    ]);
    assert.equal(
      text,
      [
        "time per test file (node's runner: process start, hooks and tests), 3 files, 468.8 s summed",
        '  467.0 s  dist/test/e2e/v.test.js',
        '    1.5 s  dist/test/unit/u.test.js',
        '    0.3 s  dist/test/unit/w.test.js',
        '  467.0 s  e2e/ (1 files)',
        '    1.8 s  unit/ (2 files)',
        '',
      ].join('\n'),
    );
    assert.equal(renderFileTimes([]), 'time per test file: no file completed\n');
  });

  it('as a reporter, yields the table once the events end', async () => {
    async function* events(): AsyncGenerator<RunnerEvent> {
      yield { type: 'test:dequeue', data: { name: '/x/a.test.js', file: '/x/a.test.js', nesting: 0 } };
      yield fileDone(join(process.cwd(), 'a.test.js'), 2000);
    }
    const out: string[] = [];
    for await (const chunk of fileTimesReporter(events())) out.push(chunk);
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^ {4}2\.0 s {2}a\.test\.js$/m);
  });

  it("node's runner, given it as --test-reporter, reports each file with at least its tests' time", () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-file-times-'));
    try {
      const sleeper = (ms: number): string =>
        `import { test } from 'node:test';\ntest('waits', () => new Promise((r) => setTimeout(r, ${ms})));\n`;
      writeFileSync(join(dir, 'slow.test.mjs'), sleeper(600));
      writeFileSync(join(dir, 'quick.test.mjs'), sleeper(0));
      const reporter = join(dirname(fileURLToPath(import.meta.url)), '../helpers/file-times-reporter.js');
      const r = spawnSync(
        process.execPath,
        ['--test', '--test-concurrency=1', `--test-reporter=${reporter}`, 'slow.test.mjs', 'quick.test.mjs'],
        // Without the runner's NODE_TEST_CONTEXT, which would make the child report to this runner instead.
        { cwd: dir, encoding: 'utf8', timeout: 60_000, env: withoutTestContext(process.env) },
      );
      assert.equal(r.status, 0, r.stderr);
      const rows = [...r.stdout.matchAll(/^ *([\d.]+) s {2}(\S+\.test\.mjs)$/gm)].map((m) => ({
        s: Number(m[1]),
        file: m[2],
      }));
      assert.deepEqual(rows.map((x) => x.file).sort(), ['quick.test.mjs', 'slow.test.mjs'], r.stdout);
      assert.ok(rows.find((x) => x.file === 'slow.test.mjs')!.s >= 0.6, r.stdout);
      assert.match(r.stdout, /, 2 files, [\d.]+ s summed$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
