/**
 * The serial console's pure parts: the upgrade check (who may open a node's console), control frames
 * from the browser, ipmitool's SOL arguments, and the recordings' bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseControl } from '../../master/serial-console/hub.js';
import { solArgs } from '../../master/serial-console/lines.js';
import { Recordings } from '../../master/serial-console/recordings.js';
import { checkUpgrade } from '../../master/serial-console/upgrade.js';
import type { Role } from '../../master/store/users.js';
import type { SignedIn } from '../../web-ui/page.js';

const MAC = '52:54:00:12:34:56';

function req(url: string, headers: Record<string, string>, encrypted = false): IncomingMessage {
  return { url, headers, socket: { encrypted } } as unknown as IncomingMessage;
}

function who(role: Role, csrfToken = 'tok'): SignedIn {
  return {
    session: { id: 's', userName: 'u', csrfToken, createdAt: 0, lastSeenAt: 0 },
    user: { name: 'u', role },
  };
}

test('checkUpgrade: Origin, session, role, CSRF token and node, in that order', () => {
  const exists = (mac: string): boolean => mac === MAC;
  const path = `/nodes/${MAC}/console/ws?csrf=tok`;
  const host = { host: 'corral.example:8443' };
  const good = { ...host, origin: 'https://corral.example:8443' };
  const as = (r: Role) => () => who(r);
  assert.deepEqual(
    (({ ok, mac }) => ({ ok, mac }))(checkUpgrade(req(path, good, true), as('operator'), exists) as never),
    { ok: true, mac: MAC },
  );
  const status = (r: IncomingMessage, s: () => SignedIn | undefined, e = exists): number | 'ok' => {
    const c = checkUpgrade(r, s, e);
    return c.ok ? 'ok' : c.status;
  };
  // The scheme is part of the origin: an http page may not open the https console's socket.
  assert.equal(status(req(path, { ...host, origin: 'http://corral.example:8443' }, true), as('admin')), 403);
  assert.equal(status(req(path, { ...host, origin: 'https://evil.example' }, true), as('admin')), 403);
  assert.equal(status(req(path, host, true), as('admin')), 403, 'no Origin');
  assert.equal(
    status(req(path, good, true), () => undefined),
    401,
  );
  assert.equal(status(req(path, good, true), as('viewer')), 403);
  assert.equal(status(req(`/nodes/${MAC}/console/ws`, good, true), as('admin')), 403, 'no token');
  assert.equal(
    status(req(path, good, true), () => who('admin', 'other')),
    403,
    'wrong token',
  );
  assert.equal(
    status(req(path, good, true), as('admin'), () => false),
    404,
  );
  assert.equal(status(req('/nodes/not-a-mac/console/ws?csrf=tok', good, true), as('admin')), 400);
  // Dashes and upper case are the same MAC.
  const dashed = checkUpgrade(
    req('/nodes/52-54-00-12-34-56/console/ws?csrf=tok', good, true),
    as('admin'),
    exists,
  );
  assert.ok(dashed.ok);
  assert.equal(
    status(req(path, { host: 'corral.example:8443', origin: 'http://corral.example:8443' }), as('admin')),
    'ok',
  );
});

test('parseControl accepts resize within bounds and takeover, nothing else', () => {
  assert.deepEqual(parseControl('{"type":"resize","cols":120,"rows":40}'), {
    type: 'resize',
    cols: 120,
    rows: 40,
  });
  assert.deepEqual(parseControl('{"type":"takeover","extra":1}'), { type: 'takeover' });
  for (const bad of [
    '{"type":"resize","cols":0,"rows":40}',
    '{"type":"resize","cols":120.5,"rows":40}',
    '{"type":"resize","cols":100000,"rows":40}',
    '{"type":"resize","cols":"80","rows":24}',
    '{"type":"write","data":"rm -rf /"}',
    'null',
    '[1]',
    'not json',
  ]) {
    assert.equal(parseControl(bad), undefined, bad);
  }
});

test('solArgs: lanplus SOL with the password in the environment (-E), never in argv', () => {
  assert.deepEqual(solArgs({ host: '10.0.0.5', port: 623, username: 'ADMIN' }, { cipherSuite: 3 }), [
    '-I',
    'lanplus',
    '-H',
    '10.0.0.5',
    '-p',
    '623',
    '-U',
    'ADMIN',
    '-E',
    '-C',
    '3',
    'sol',
    'activate',
  ]);
  assert.ok(!solArgs({ host: 'h', port: 1, username: 'u' }, {}).includes('-C'));
});

test('recordings: output bounded per session and marked truncated, oldest pruned per node, ids checked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-rec-'));
  try {
    const rec = new Recordings(dir, 10, 2);
    const a = rec.start(MAC, 'alice', 'socket /x', new Date('2026-12-06T10:00:00Z'));
    a.write(Buffer.from('hello '));
    a.write(Buffer.from('world, and more'));
    a.finish(new Date('2026-12-06T10:01:00Z'));
    assert.equal(a.meta.bytes, 10);
    assert.equal(a.meta.truncated, true);
    const got = rec.read(MAC, a.meta.id);
    assert.equal(got.output.toString(), 'hello worl');
    assert.equal(got.meta.endedAt, '2026-12-06T10:01:00.000Z');
    assert.equal(got.meta.user, 'alice');
    rec.start(MAC, 'bob', 's', new Date('2026-12-06T11:00:00Z')).finish(new Date());
    rec.start(MAC, 'carol', 's', new Date('2026-12-06T12:00:00Z')).finish(new Date());
    assert.deepEqual(
      rec.list(MAC).map((m) => m.user),
      ['carol', 'bob'],
      'keeps the newest two',
    );
    assert.throws(() => rec.read(MAC, a.meta.id), { code: 'NOT_FOUND' });
    assert.throws(() => rec.read(MAC, '../../etc/passwd'), { code: 'NOT_FOUND' });
    assert.equal(
      readFileSync(join(dir, '52-54-00-12-34-56', `${rec.list(MAC)[0]!.id}.json`), 'utf8').includes('carol'),
      true,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
