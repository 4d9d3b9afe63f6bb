import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  base32Decode,
  base32Encode,
  generateTotpSecret,
  hotp,
  matchTotp,
  otpauthUri,
  totpAt,
  TotpReplayGuard,
} from '../../master/auth/totp.js';

// RFC 6238 Appendix B, SHA-1 rows: the secret is the ASCII "12345678901234567890".
const RFC_SECRET = Buffer.from('12345678901234567890');
const RFC_VECTORS: [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

test('HOTP/TOTP match the RFC 6238 test vectors (8 digits) and their 6-digit truncation', () => {
  for (const [t, code] of RFC_VECTORS) {
    assert.equal(hotp(RFC_SECRET, Math.floor(t / 30), 8), code, `T=${t}`);
    assert.equal(totpAt(RFC_SECRET, t * 1000), code.slice(2), `6 digits at T=${t}`);
  }
  // RFC 4226 Appendix D, counter 0..2.
  assert.deepEqual(
    [0, 1, 2].map((c) => hotp(RFC_SECRET, c)),
    ['755224', '287082', '359152'],
  );
});

test('base32 (RFC 4648) round-trips and matches its test vectors', () => {
  assert.equal(base32Encode(Buffer.from('foobar')), 'MZXW6YTBOI');
  assert.equal(base32Decode('MZXW6YTBOI======').toString(), 'foobar');
  const secret = generateTotpSecret();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.equal(base32Decode(secret).length, 20);
});

test('matchTotp allows one step of drift, refuses others and malformed codes; the guard refuses reuse', () => {
  const secret = base32Encode(RFC_SECRET);
  const t = 1111111111_000;
  const now = totpAt(RFC_SECRET, t);
  const step = Math.floor(t / 30_000);
  assert.equal(matchTotp(secret, now, t), step);
  assert.equal(matchTotp(secret, totpAt(RFC_SECRET, t - 30_000), t), step - 1);
  assert.equal(matchTotp(secret, totpAt(RFC_SECRET, t + 30_000), t), step + 1);
  assert.equal(matchTotp(secret, totpAt(RFC_SECRET, t - 90_000), t), undefined);
  assert.equal(matchTotp(secret, '12345', t), undefined);
  assert.equal(matchTotp(secret, 'abcdef', t), undefined);
  const guard = new TotpReplayGuard();
  assert.equal(guard.accept('alice', step), true);
  assert.equal(guard.accept('alice', step), false);
  assert.equal(guard.accept('alice', step - 1), false);
  assert.equal(guard.accept('bob', step), true);
});

test('otpauth URI carries issuer, account and parameters', () => {
  const uri = otpauthUri('Corral', 'alice', 'MZXW6YTBOI');
  assert.equal(
    uri,
    'otpauth://totp/Corral%3Aalice?secret=MZXW6YTBOI&issuer=Corral&algorithm=SHA1&digits=6&period=30',
  );
});
