import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSecretKey, REDACTED, redactSetting, Redactor, redactUrl } from '../../master/util/redact.js';

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
});
