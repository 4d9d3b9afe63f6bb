/**
 * The TFTP server's generated files (issue 18: network GRUB's config, kernel and initrds are made by the
 * master, not kept in the TFTP root), fetched by a real client (tftp-hpa) on loopback: a generated buffer
 * and a generated path arrive byte for byte, names the hook declines still come from the root, and the
 * hook never sees a name the path rules refuse.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTftpServer, type TftpServer } from '../../master/tftp/index.js';
import type { GeneratedFile } from '../../master/tftp/server.js';
import { silentLogger } from '../../master/util/logger.js';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';

const exec = promisify(execFile);
let dir = '';
let server: TftpServer | undefined;
const asked: string[] = [];
const kernel = randomBytes(200_000);
const config = Buffer.from('set timeout=0\nconfigfile $prefix/node/${net_default_mac}/0.cfg\n');

before(async () => {
  failIfUnmet(unmetNeeds({ commands: ['tftp'] }));
  dir = await mkdtemp(join(tmpdir(), 'corral-sb-tftp-'));
  await writeFile(join(dir, 'vmlinuz'), kernel);
  await writeFile(join(dir, 'shimx64.efi'), 'shim bytes');
  server = await startTftpServer({
    root: dir,
    address: '127.0.0.1',
    port: 0,
    logger: silentLogger(),
    generated: (relative, peer): GeneratedFile | undefined => {
      asked.push(`${relative} ${peer}`);
      if (relative === 'grub/grub.cfg') return { data: config };
      if (relative === 'node/vmlinuz') return { path: join(dir, 'vmlinuz') };
      return undefined;
    },
  });
});

after(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function get(name: string): Promise<Buffer> {
  const out = join(dir, `got-${randomBytes(4).toString('hex')}`);
  await exec('tftp', ['127.0.0.1', String(server!.port), '-m', 'binary', '-c', 'get', name, out], {
    timeout: 30_000,
  });
  return readFile(out);
}

test('generated files reach a real TFTP client; declined names come from the root', async () => {
  assert.deepEqual(await get('/grub/grub.cfg'), config, 'generated buffer, leading slash as GRUB sends');
  assert.deepEqual(await get('node/vmlinuz'), kernel, 'generated path');
  assert.equal((await get('shimx64.efi')).toString(), 'shim bytes', 'root file');
  assert.ok(asked.includes('grub/grub.cfg 127.0.0.1'), asked.join('\n'));
  assert.ok(
    asked.some((a) => a.startsWith('shimx64.efi ')),
    'asked first, declined, then the root',
  );
  // A refused name ('..') is refused before the hook: it never sees one.
  await get('../etc/passwd').catch(() => undefined);
  assert.ok(!asked.some((a) => a.includes('..')), asked.join('\n'));
  assert.equal(server!.stats().completed, 3);
});
