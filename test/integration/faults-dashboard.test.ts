/**
 * Subsystem faults (issue 14) where an operator sees them: GET /api/v1/health `subsystems` and the
 * console dashboard, from a real master started in-process on loopback.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildConfig } from '../../master/config.js';
import { startMaster, type Master } from '../../master/master.js';
import { Faults } from '../../master/util/faults.js';
import { silentLogger } from '../../master/util/logger.js';
import { Browser } from '../helpers/browser.js';

const PASSWORD = 'faults-dashboard-pw';
const dir = mkdtempSync(join(tmpdir(), 'corral-faults-'));
let master: Master | undefined;

after(async () => {
  await master?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('subsystem faults in health and on the dashboard', () => {
  it('counts recorded by a subsystem appear in /api/v1/health and on the dashboard', async () => {
    const logger = silentLogger();
    let t = Date.parse('2026-12-06T13:00:00Z');
    const faults = new Faults(logger, () => t);
    const config = buildConfig(
      {
        dataDir: dir,
        http: { port: 0, bind: '127.0.0.1' },
        tftp: { port: 0 },
        lb: { enabled: false },
        monitor: { enabled: false },
        console: { https: false },
      },
      { address: '127.0.0.1' },
    );
    master = await startMaster(config, { logger, initialAdminPassword: PASSWORD, faults });
    const base = `http://127.0.0.1:${master.httpPort}`;
    const before = (await (await fetch(`${base}/api/v1/health`)).json()) as Record<string, unknown>;
    assert.deepEqual(before['subsystems'], { tftp: { faults: 0, lastFault: null, dropped: 0 } });

    // What the TFTP server records at its boundaries (see master/tftp/server.ts).
    const tftp = faults.subsystem('tftp');
    tftp.drop('source port 0', '10.0.0.66:0');
    tftp.drop('source port 0', '10.0.0.66:0');
    t += 5000;
    tftp.guard('tftp request', () => {
      throw new RangeError('Port should be > 0 and < 65536');
    })();
    const health = (await (await fetch(`${base}/api/v1/health`)).json()) as Record<string, unknown>;
    assert.deepEqual(health['subsystems'], {
      tftp: {
        faults: 1,
        lastFault: { at: '2026-12-06T13:00:05.000Z', message: 'RangeError: Port should be > 0 and < 65536' },
        dropped: 2,
      },
    });

    const browser = new Browser(base);
    assert.equal((await browser.login('admin', PASSWORD)).status, 303);
    const page = await (await browser.get('/')).text();
    assert.match(
      page,
      /<dt>Faults<\/dt><dd>tftp 1 \(2 dropped\); last: tftp, RangeError: Port should be &gt; 0 and &lt; 65536 at 2026-12-06T13:00:05.000Z<\/dd>/,
    );
  });
});
