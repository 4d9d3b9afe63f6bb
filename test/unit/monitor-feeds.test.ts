/**
 * What feeds the monitor's alerts besides the master's own sample: the HA backup's lag (from either side of
 * the pair) and the nodes' samples, whose expected pace is the SSH collector's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildConfig } from '../../master/config.js';
import { backupLagSeconds } from '../../master/ha/backup-lag.js';
import type { HaStatus } from '../../master/ha/controller.js';
import { Monitor } from '../../master/monitor/monitor.js';
import type { MetricSample } from '../../master/store/metrics.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'corral-monitor-feeds-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const masterSample = (at: number): MetricSample => ({
  at,
  cpu: 1,
  memUsed: 1,
  memTotal: 2,
  diskUsed: 1,
  diskTotal: 100,
  netRx: 0,
  netTx: 0,
  load1: 0,
});

type LagView = Pick<HaStatus, 'role' | 'backup' | 'follower'>;
const primary = (lagSeconds: number): LagView => ({
  role: 'primary',
  backup: { ackedSeq: 1, lagChanges: 3, lagSeconds, lastContactAt: null, connected: false },
  follower: null,
});
const backup = (lagSeconds: number): LagView => ({
  role: 'backup',
  backup: null,
  follower: {
    peerUrl: 'http://10.0.0.2:8080',
    connected: true,
    appliedSeq: 1,
    primaryLastSeq: 4,
    primaryEpoch: 2,
    lagChanges: 3,
    lagSeconds,
    lastContactAt: null,
    lastError: null,
    discarded: 0,
  },
});

test('backupLagSeconds: the primary reads its backup’s acknowledgements, a backup its own replication', () => {
  assert.equal(backupLagSeconds(primary(75)), 75);
  assert.equal(backupLagSeconds(backup(12)), 12);
  assert.equal(backupLagSeconds({ role: 'primary', backup: null, follower: null }), undefined);
});

test('HA lag raises and clears the "backup lagging" alert through the Monitor', async () => {
  const repos = openRepos({ path: join(dir, 'lag.db'), logger: silentLogger() });
  const clock = 1_700_000_000_000;
  let status = primary(5);
  const monitor = new Monitor({
    repos,
    config: buildConfig({ dataDir: dir }, { address: '10.0.0.1' }),
    logger: silentLogger(),
    now: () => clock,
    sampler: async () => masterSample(Math.floor(clock / 1000)),
    backupLagSeconds: () => backupLagSeconds(status),
  });
  await monitor.tick();
  assert.deepEqual(monitor.alerts(), []);
  status = primary(120);
  await monitor.tick();
  assert.deepEqual(
    monitor.alerts().map((a) => [a.kind, a.message]),
    [['backup.lagging', 'The backup master is 120 s behind the primary.']],
  );
  status = primary(0);
  await monitor.tick();
  assert.deepEqual(monitor.alerts(), []);
  assert.deepEqual(
    repos.events
      .list({})
      .map((e) => e.kind)
      .reverse(),
    ['alert.raised', 'alert.cleared'],
  );
  repos.store.close();
});

test('node down waits nodeDownIntervals × the collector’s pace, not the master’s faster one', () => {
  const repos = openRepos({ path: join(dir, 'down.db'), logger: silentLogger() });
  const mac = '52:54:00:aa:00:01';
  repos.store.write((j) =>
    repos.nodes.insertIn(j, { mac, name: 'n1', seqNo: 1, state: 'deployed', ip: '10.0.0.5' }),
  );
  let clock = 1_700_000_000_000;
  // Master every 10 s, nodes every 30 s, 6 intervals: silent for more than 180 s is down, 61 s is not.
  const config = buildConfig(
    { dataDir: dir, monitor: { intervalSeconds: 10, nodeSshSeconds: 30, nodeDownIntervals: 6 } },
    { address: '10.0.0.1' },
  );
  const monitor = new Monitor({
    repos,
    config,
    logger: silentLogger(),
    now: () => clock,
    sampler: async () => masterSample(Math.floor(clock / 1000)),
  });
  monitor.recordNode(mac, {
    cpu: 1,
    memUsed: 1,
    memTotal: 2,
    diskUsed: 1,
    diskTotal: 2,
    netRx: 0,
    netTx: 0,
    load1: 0,
  });
  clock += 61_000;
  monitor.evaluate();
  assert.deepEqual(monitor.alerts(), []);
  clock += 120_000;
  monitor.evaluate();
  assert.deepEqual(
    monitor.alerts().map((a) => a.key),
    [`node.down:${mac}`],
  );
  assert.match(monitor.alerts()[0]!.message, /expected every 30 s/);
  repos.store.close();
});
