/**
 * The CLI's pure pieces: fingerprint and URL normalisation, the profiles file's modes (whatever the umask),
 * its validation, profile selection, and the one-line usage errors of the argv parser.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { defineCommand, parseCommand, wantsHelp } from '../../master/cli/command.js';
import { masterUrl } from '../../master/cli/login.js';
import {
  configDir,
  normaliseFingerprint,
  readProfiles,
  selectProfile,
  writeProfiles,
  type Profile,
} from '../../master/cli/profiles.js';
import { CorralError } from '../../master/util/errors.js';

const root = mkdtempSync(join(tmpdir(), 'corral-cli-profiles-'));
after(() => rmSync(root, { recursive: true, force: true }));

const FP = Array.from({ length: 32 }, (_, i) =>
  (i * 7 + 16).toString(16).toUpperCase().padStart(2, '0'),
).join(':');
const profile: Profile = {
  url: 'https://10.0.0.1',
  user: 'admin',
  password: 'pw',
  fingerprint256: FP,
  createdAt: '2026-12-06T00:00:00.000Z',
};

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return err instanceof CorralError ? err.code : `not a CorralError: ${String(err)}`;
  }
  return 'no error';
};

describe('fingerprints and URLs', () => {
  it('accepts the forms openssl, sha256sum and the CLI print, and nothing shorter', () => {
    const plain = FP.replace(/:/g, '');
    assert.equal(normaliseFingerprint(FP), FP);
    assert.equal(normaliseFingerprint(plain.toLowerCase()), FP);
    assert.equal(normaliseFingerprint(`SHA256:${plain}`), FP);
    assert.equal(normaliseFingerprint(`sha256 ${FP}`), FP, 'as the CLI prints it');
    assert.equal(normaliseFingerprint(plain.slice(2)), undefined);
    assert.equal(normaliseFingerprint(`${plain.slice(2)}ZZ`), undefined);
  });

  it('takes https URLs and bare hosts; refuses plain http (but to loopback) and credentials in the URL', () => {
    assert.equal(masterUrl('10.0.0.1').href, 'https://10.0.0.1/');
    assert.equal(
      code(() => masterUrl('http://127.0.0.2.example.com')),
      'USAGE',
    );
    assert.equal(masterUrl('http://127.0.0.1:8080').protocol, 'http:', 'loopback only: the lab forward');
    assert.equal(masterUrl('http://[::1]:8080').protocol, 'http:');
    assert.equal(masterUrl('https://master.example:8443').port, '8443');
    assert.equal(
      code(() => masterUrl('http://10.0.0.1')),
      'USAGE',
    );
    assert.equal(
      code(() => masterUrl('https://admin:pw@10.0.0.1')),
      'USAGE',
    );
  });
});

describe('the profiles file', () => {
  it('is 0600 in a 0700 directory even with umask 0, and a looser existing directory is tightened', () => {
    const old = process.umask(0);
    try {
      const dir = join(root, 'fresh', 'corral');
      writeProfiles(dir, { current: 'a', profiles: { a: profile } });
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir, 'profiles.json')).mode & 0o777, 0o600);
      const loose = join(root, 'loose');
      mkdirSync(loose, { mode: 0o755 });
      chmodSync(loose, 0o755);
      writeProfiles(loose, { profiles: {} });
      assert.equal(statSync(loose).mode & 0o777, 0o700);
      assert.deepEqual(readProfiles(dir), { current: 'a', profiles: { a: profile } });
    } finally {
      process.umask(old);
    }
  });

  it('only a plain-HTTP profile may lack a pinned fingerprint', () => {
    const dir = join(root, 'nopin');
    const unpinned: Profile = { ...profile };
    delete unpinned.fingerprint256;
    writeProfiles(dir, { profiles: { lab: { ...unpinned, url: 'http://127.0.0.1:8080' } } });
    assert.equal(readProfiles(dir).profiles['lab']?.fingerprint256, undefined);
    writeProfiles(dir, { profiles: { bad: unpinned } });
    assert.throws(() => readProfiles(dir), /profiles\.bad\.fingerprint256: an https profile needs/);
  });

  it('a missing file is no profiles; a malformed one is a config error naming the field', () => {
    assert.deepEqual(readProfiles(join(root, 'none')), { profiles: {} });
    const bad = join(root, 'bad');
    mkdirSync(bad);
    writeFileSync(
      join(bad, 'profiles.json'),
      JSON.stringify({ profiles: { a: { ...profile, fingerprint256: 'x' } } }),
    );
    assert.throws(() => readProfiles(bad), /profiles\.a\.fingerprint256/);
    writeFileSync(join(bad, 'profiles.json'), '{');
    assert.equal(
      code(() => readProfiles(bad)),
      'CONFIG_INVALID',
    );
    assert.equal(readFileSync(join(bad, 'profiles.json'), 'utf8'), '{', 'left as found');
  });

  it('selects the current or the named profile, with an error that says what to do', () => {
    const file = { current: 'a', profiles: { a: profile, b: { ...profile, user: 'ops' } } };
    assert.equal(selectProfile(file, undefined).name, 'a');
    assert.equal(selectProfile(file, 'b').profile.user, 'ops');
    assert.equal(
      code(() => selectProfile(file, 'c')),
      'CLI_PROFILE_NOT_FOUND',
    );
    assert.equal(
      code(() => selectProfile({ profiles: {} }, undefined)),
      'CLI_NOT_LOGGED_IN',
    );
  });

  it('lives in CORRAL_CONFIG_DIR, else XDG_CONFIG_HOME/corral, else HOME/.config/corral', () => {
    assert.equal(configDir({ CORRAL_CONFIG_DIR: '/etc/x', HOME: '/root' }), '/etc/x');
    assert.equal(configDir({ XDG_CONFIG_HOME: '/xdg', HOME: '/root' }), '/xdg/corral');
    assert.equal(configDir({ HOME: '/home/ops' }), '/home/ops/.config/corral');
    assert.equal(
      code(() => configDir({})),
      'CLI_PROFILES_UNWRITABLE',
    );
  });
});

describe('argv parsing', () => {
  const spec = defineCommand({
    path: ['demo', 'run'],
    help: '',
    options: { count: { type: 'string' }, json: { type: 'boolean' } },
    passthrough: true,
    run: async () => 0,
  });

  it('parses flags and keeps the words after -- apart', () => {
    const r = parseCommand(spec, ['a', '--count', '3', '--', '--json', 'x']);
    assert.deepEqual(r.positionals, ['a']);
    assert.equal(r.values['count'], '3');
    assert.equal(r.values['json'], undefined, 'a flag after -- belongs to the command being run');
    assert.deepEqual(r.rest, ['--json', 'x']);
  });

  it('an unknown flag or a missing value is one USAGE line naming it', () => {
    assert.throws(
      () => parseCommand(spec, ['--cuont', '3']),
      (e: unknown) =>
        e instanceof CorralError &&
        e.code === 'USAGE' &&
        e.message === "demo run: unknown option '--cuont' (see corral demo run --help)",
    );
    assert.throws(
      () => parseCommand(spec, ['--count']),
      /^CorralError: demo run: Option '--count <value>' argument missing$/,
    );
  });

  it('--help counts only before --', () => {
    assert.equal(wantsHelp(['x', '--help']), true);
    assert.equal(wantsHelp(['x', '--', 'ls', '--help']), false);
  });
});
