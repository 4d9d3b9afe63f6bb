/**
 * Every `corral` command's --help, run as the user runs it (the built CLI in a child process): it exits
 * 0 and mentions every flag the command's own option table makes cli.ts accept (read from the registry,
 * not listed here), and an unknown flag exits 2 with one line that names it. No sockets.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { flagsOf } from '../../master/cli/command.js';
import { COMMANDS } from '../../master/cli/registry.js';
import { CLI, exitOf } from '../../master/lab/master-process.js';

interface Run {
  code: number | string;
  stdout: string;
  stderr: string;
}

function corral(args: string[]): Promise<Run> {
  // A profile directory that does not exist: nothing here may depend on the machine's own profiles.
  const child = spawn('node', [CLI, ...args], {
    env: { ...process.env, CORRAL_CONFIG_DIR: '/nonexistent/corral-help-test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return exitOf(child, 20_000).then((code) => ({ code, stdout, stderr }));
}

/** A whole word: `--to` does not count as mentioned because `--token` is, nor `on` inside `option`. */
function mentions(text: string, word: string): boolean {
  return new RegExp(`(?<![\\w-])${word}(?![\\w-])`).test(text);
}

// Each case runs its own CLI processes and shares nothing, and each spawn is mostly module loading (about
// 0.4 s of CPU): two at a time keep both cores busy when this file is the last one running (docs/testing.md).
describe('corral --help', { concurrency: 2 }, () => {
  it('lists every command that is not internal, and exits 0', async () => {
    const r = await corral(['--help']);
    assert.equal(r.code, 0);
    for (const spec of COMMANDS.filter((s) => !s.hidden)) {
      assert.ok(
        r.stdout.includes(`corral ${spec.path.join(' ')}`),
        `corral ${spec.path.join(' ')} is listed`,
      );
    }
  });

  it('a command family without its word (corral node --help) shows every member', async () => {
    const r = await corral(['node', '--help']);
    assert.equal(r.code, 0);
    for (const spec of COMMANDS.filter((s) => s.path[0] === 'node')) {
      assert.ok(r.stdout.includes(`corral ${spec.path.join(' ')}`), spec.path.join(' '));
    }
    const bare = await corral(['node']);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^corral: usage: corral node list\|show\|/);
  });

  for (const spec of COMMANDS) {
    const name = spec.path.join(' ');
    it(`corral ${name} --help mentions each of its flags; an unknown flag exits 2 naming it`, async () => {
      const help = await corral([...spec.path, '--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.equal(help.stdout, spec.help);
      assert.ok(help.stdout.startsWith(`  corral ${name}`), help.stdout);
      for (const flag of flagsOf(spec)) {
        assert.ok(mentions(help.stdout, flag), `corral ${name} --help does not mention ${flag}`);
      }
      // Help for a verb is the command's help too (corral snapshot list --help).
      if (spec.verbs?.[0]) {
        const verb = await corral([...spec.path, spec.verbs[0], '--help']);
        assert.equal(verb.code, 0);
        assert.equal(verb.stdout, spec.help);
        for (const v of spec.verbs) assert.ok(mentions(spec.help, v), `${name} help names its verb ${v}`);
      }
      const bad = await corral([...spec.path, '--no-such-flag', 'x']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.equal(bad.stdout, '');
      assert.equal(
        bad.stderr,
        `corral: ${name}: unknown option '--no-such-flag' (see corral ${name} --help)\n`,
      );
    });
  }
});
