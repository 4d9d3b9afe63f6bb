import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  admit,
  DUPLICATE_RRQ_WINDOW_MS,
  type AdmissionState,
  type RequestFacts,
} from '../../master/tftp/admit.js';
import { ErrorCode } from '../../master/tftp/codec.js';

const LIMITS = { maxTransfers: 256, maxPerClient: 4 };
const req = (o: Partial<RequestFacts> = {}): RequestFacts => ({
  op: 'RRQ',
  mode: 'octet',
  filename: 'undionly.kpxe',
  clientAddress: '10.0.0.5',
  ...o,
});
const state = (o: Partial<AdmissionState> = {}): AdmissionState => ({
  existing: null,
  active: 0,
  activeForClient: 0,
  ...o,
});

describe('tftp admit()', () => {
  test('a read request with room is accepted', () => {
    assert.deepEqual(admit(req(), state(), LIMITS), { verdict: 'accept', supersede: false });
  });

  test('write requests are refused with ERROR 2 (the boot root is read-only)', () => {
    const v = admit(req({ op: 'WRQ' }), state(), LIMITS);
    assert.equal(v.verdict, 'refuse');
    assert.equal(v.verdict === 'refuse' && v.code, ErrorCode.ACCESS_VIOLATION);
  });

  test('netascii is refused', () => {
    const v = admit(req({ mode: 'netascii' }), state(), LIMITS);
    assert.equal(v.verdict === 'refuse' && v.reason, 'mode');
  });

  test('a retransmitted RRQ (same endpoint, same file, nothing heard yet) is ignored', () => {
    const v = admit(
      req(),
      state({
        existing: { file: 'undionly.kpxe', heardFromClient: false, ageMs: 0 },
        active: 1,
        activeForClient: 1,
      }),
      LIMITS,
    );
    assert.equal(v.verdict, 'ignore');
  });

  test('a new request on an endpoint that made progress supersedes its transfer, which frees its slot', () => {
    const full = { maxTransfers: 1, maxPerClient: 1 };
    const v = admit(
      req(),
      state({
        existing: { file: 'undionly.kpxe', heardFromClient: true, ageMs: DUPLICATE_RRQ_WINDOW_MS },
        active: 1,
        activeForClient: 1,
      }),
      full,
    );
    assert.deepEqual(v, { verdict: 'accept', supersede: true });
    const other = admit(
      req({ filename: 'ipxe.efi' }),
      state({
        existing: { file: 'undionly.kpxe', heardFromClient: false, ageMs: 0 },
        active: 1,
        activeForClient: 1,
      }),
      full,
    );
    assert.deepEqual(other, { verdict: 'accept', supersede: true });
  });

  test('a copy of the RRQ read after the first ACK (two sockets, read in either order) is ignored, not a restart', () => {
    // The boot storm (issue 19): the copy superseded the running transfer and the machine failed.
    const heard = (ageMs: number): AdmissionState =>
      state({
        existing: { file: 'undionly.kpxe', heardFromClient: true, ageMs },
        active: 1,
        activeForClient: 1,
      });
    assert.equal(admit(req(), heard(800), LIMITS).verdict, 'ignore');
    assert.equal(admit(req(), heard(DUPLICATE_RRQ_WINDOW_MS - 1), LIMITS).verdict, 'ignore');
    assert.deepEqual(admit(req(), heard(DUPLICATE_RRQ_WINDOW_MS), LIMITS), {
      verdict: 'accept',
      supersede: true,
    });
    // Another file from that port is a new request, whatever the age.
    assert.deepEqual(admit(req({ filename: 'ipxe.efi' }), heard(800), LIMITS), {
      verdict: 'accept',
      supersede: true,
    });
  });

  test('the per-client limit refuses the fifth transfer from one address, not another address', () => {
    const v = admit(req(), state({ active: 4, activeForClient: 4 }), LIMITS);
    assert.equal(v.verdict, 'refuse');
    assert.equal(v.verdict === 'refuse' && v.reason, 'client-limit');
    assert.equal(v.verdict === 'refuse' && v.message, 'Server busy');
    assert.match(v.verdict === 'refuse' ? v.detail : '', /maxPerClient \(4\).*10\.0\.0\.5/);
    assert.deepEqual(
      admit(req({ clientAddress: '10.0.0.6' }), state({ active: 4, activeForClient: 0 }), LIMITS),
      {
        verdict: 'accept',
        supersede: false,
      },
    );
  });

  test('the server-wide limit defers without an ERROR (the client retransmits), the per-client one refuses', () => {
    const v = admit(req(), state({ active: 256, activeForClient: 1 }), LIMITS);
    assert.deepEqual(v, { verdict: 'defer', detail: 'maxTransfers (256) reached' });
    assert.equal(admit(req(), state({ active: 255, activeForClient: 1 }), LIMITS).verdict, 'accept');
  });

  test('the starvation of issue 14: one address can hold at most maxPerClient of maxTransfers slots', () => {
    let active = 0;
    let accepted = 0;
    for (let port = 1; port <= 256; port++) {
      const v = admit(req(), state({ active, activeForClient: active }), LIMITS);
      if (v.verdict === 'accept') {
        accepted++;
        active++;
      }
    }
    assert.equal(accepted, 4);
    assert.equal(
      admit(req({ clientAddress: '10.0.0.9' }), state({ active, activeForClient: 0 }), LIMITS).verdict,
      'accept',
    );
  });
});
