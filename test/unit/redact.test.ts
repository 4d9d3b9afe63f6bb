import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  isSecretKey,
  REDACTED,
  redactSetting,
  Redactor,
  redactUrl,
  SecretIndex,
} from '../../master/util/redact.js';

/** A small seeded generator (mulberry32), so a failing case can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A string of `n` characters from `alphabet` (a small one makes near-misses and shared prefixes likely). */
function word(rnd: () => number, alphabet: string, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[Math.floor(rnd() * alphabet.length)];
  return out;
}

/** The check as it was before the one-pass index: one `includes` per secret, replacements in order. */
const naive = {
  leaks: (secrets: string[], text: string): boolean => secrets.some((s) => text.includes(s)),
  text: (secrets: string[], text: string): string => {
    let out = text;
    for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return redactUrl(
      out.replace(/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g, REDACTED),
    );
  },
};

describe('the one redaction rule (master/util/redact.ts)', () => {
  it('hides secret-named keys, keeps paths to secrets visible', () => {
    for (const k of [
      'token',
      'password',
      'adminPassword',
      'secret',
      'passphrase',
      'privateKey',
      'apiKey',
      'authorization',
    ])
      assert.ok(isSecretKey(k), k);
    for (const k of ['key', 'keyFile', 'certFile', 'tokenFile', 'keepalived', 'monkey', 'mode'])
      assert.ok(!isSecretKey(k), k);
    assert.equal(redactSetting('ha.token', 'x'.repeat(20)), REDACTED);
    assert.equal(redactSetting('ha.token', undefined), undefined, 'an unset secret stays visibly unset');
    assert.equal(redactSetting('ha.mode', 'sync'), 'sync');
  });

  it('hides URL user-info, and registered passwords found in config URLs anywhere', () => {
    assert.equal(
      redactUrl('see http://u:p@h/x and ftp://a@b'),
      `see http://${REDACTED}@h/x and ftp://${REDACTED}@b`,
    );
    const r = new Redactor();
    r.addFromConfig({
      data: { pg: 'postgres://corral:db%2Fpass-1234@db/x' },
      ha: { token: 'a-token-of-20-chars!' },
    });
    assert.equal(r.text('password db/pass-1234 was rejected'), `password ${REDACTED} was rejected`);
    assert.equal(r.text('Bearer a-token-of-20-chars!'), `Bearer ${REDACTED}`);
  });

  it('ignores short values, which would garble ordinary text', () => {
    const r = new Redactor();
    r.add('admin');
    assert.equal(r.text('admin signed in'), 'admin signed in');
  });

  it('hides any PEM private key block, registered or not', () => {
    const r = new Redactor();
    const text =
      'got -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY----- ok';
    assert.equal(r.text(text), `got ${REDACTED} ok`);
  });

  it('registers each base64 line of a PEM key', () => {
    const pem =
      '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\nAwEHBG0wawIBAQQgabcdefghijklmnop\n-----END PRIVATE KEY-----\n';
    const r = new Redactor();
    r.add(pem);
    assert.ok(r.leaks('line: AwEHBG0wawIBAQQgabcdefghijklmnop'));
    assert.ok(!r.text(pem).includes('MIGHAgEAMBMGByqGSM49AgEGCCqGSM49'));
  });

  it('copies values: errors as plain objects, toJSON honoured, cycles and depth bounded, input untouched', () => {
    const r = new Redactor();
    r.add('s3cret-value-xyz');
    const err = Object.assign(new Error('failed with s3cret-value-xyz'), { code: 'E1' });
    const cyclic: Record<string, unknown> = { url: new URL('http://u:s3cret-value-xyz@h/'), err };
    cyclic['self'] = cyclic;
    const out = r.value(cyclic) as Record<string, Record<string, unknown>>;
    assert.equal(out['err']?.['message'], `failed with ${REDACTED}`);
    assert.equal(out['err']?.['code'], 'E1');
    assert.match(
      String(out['url']),
      /^http:\/\/u:\(set; hidden\)@h\/$/,
      'the URL printed as text, password hidden',
    );
    assert.equal(out['self'], '[…]');
    assert.equal(err.message, 'failed with s3cret-value-xyz', 'the original is not changed');
  });

  it('finds every registered secret in one pass, at any position, and nothing that is not there', () => {
    const secrets = ['abcdefgh', 'abcdefghij', 'xbcdefgh', 'héllo wörld→x', 'S3cr3t-Token-0123456789'];
    const index = new SecretIndex(secrets);
    for (const s of secrets) {
      assert.ok(index.foundIn(s), `the secret alone: ${s}`);
      assert.ok(index.foundIn(`${'.'.repeat(1000)}${s}`), `at the end: ${s}`);
      assert.ok(index.foundIn(`${s}${'…'.repeat(1000)}`), `at the start, in a two-byte text: ${s}`);
      // One code unit short of the secret, at either end: found only where another secret is inside it.
      const cut = `__${s.slice(1)}__${s.slice(0, -1)}__`;
      assert.equal(index.foundIn(cut), naive.leaks(secrets, cut), `cut: ${s}`);
    }
    assert.ok(!index.foundIn('__bcdefgh__abcdefg__'), 'cut on both sides of abcdefgh');
    assert.ok(index.foundIn('__abcdefghi__'), 'abcdefgh inside a cut abcdefghij');
    assert.ok(!index.foundIn(''), 'an empty text');
    assert.ok(!index.foundIn('abcdefg'), 'a text shorter than the window');
    assert.ok(!new SecretIndex([]).foundIn('abcdefgh'), 'no secrets');
    assert.throws(() => new SecretIndex(['short', 'long-enough']), /shorter than 8/);
  });

  it('answers as one includes per secret did, for random secrets and texts (leaks and text)', () => {
    const rnd = random(19);
    // A four-letter alphabet: secrets share prefixes and windows, texts hold near-misses of them.
    for (let round = 0; round < 200; round++) {
      const alphabet = round % 2 ? 'abcd' : 'ab→é';
      // Every third round, long secrets only (a PEM body's length): windows past a byte's shift.
      const [shortest, spread] = round % 3 === 2 ? [250, 150] : [8, 12];
      const secrets = Array.from({ length: 1 + Math.floor(rnd() * 40) }, () =>
        word(rnd, alphabet, shortest + Math.floor(rnd() * spread)),
      );
      const r = new Redactor();
      for (const s of secrets) r.add(s);
      const registered = [...new Set(secrets)];
      for (let t = 0; t < 10; t++) {
        let text = word(rnd, `${alphabet} xyz`, Math.floor(rnd() * 600));
        if (rnd() < 0.5) {
          const s = registered[Math.floor(rnd() * registered.length)] ?? '';
          const at = Math.floor(rnd() * (text.length + 1));
          text = text.slice(0, at) + s + text.slice(at);
        }
        assert.equal(r.leaks(text), naive.leaks(registered, text), `round ${round}: ${text}`);
        assert.equal(r.text(text), naive.text(registered, text), `round ${round}: ${text}`);
      }
    }
  });

  it('keeps finding secrets registered after the first check (the index is rebuilt)', () => {
    const r = new Redactor();
    r.add('first-secret-1');
    assert.ok(!r.leaks('a page with second-secret-2 on it'));
    r.add('second-secret-2');
    assert.ok(r.leaks('a page with second-secret-2 on it'), 'found after it was registered');
    assert.ok(r.leaks('and first-secret-1'), 'the earlier one still found');
    assert.equal(r.text('second-secret-2 and first-secret-1'), `${REDACTED} and ${REDACTED}`);
  });

  it('checks a console-sized page against a thousand secrets (BMC passwords) and finds each', () => {
    const rnd = random(7);
    const secrets = Array.from({ length: 1000 }, (_, i) => `bmc-${i}-${word(rnd, 'abcdefghijklmnop', 12)}`);
    const r = new Redactor();
    for (const s of secrets) r.add(s);
    const row = '<tr><td><a href="/nodes/52:54:00:00:00:01">node-0001</a></td><td>deployed</td></tr>\n';
    const page = row.repeat(1200);
    assert.ok(!r.leaks(page));
    for (const s of [secrets[0], secrets[499], secrets[999]]) {
      const at = Math.floor(rnd() * page.length);
      assert.ok(r.leaks(page.slice(0, at) + s! + page.slice(at)), `${s} in the page`);
    }
  });

  it('leaves out a PEM body of whitespace only (it would be found in every text)', () => {
    const r = new Redactor();
    r.add('-----BEGIN PRIVATE KEY-----\n \n-----END PRIVATE KEY-----');
    assert.ok(!r.leaks('any ordinary text'));
    assert.ok(
      r.leaks('x -----BEGIN PRIVATE KEY-----\n \n-----END PRIVATE KEY----- y'),
      'the value itself still is',
    );
  });
});
