import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildConfig } from '../../master/config.js';
import { evaluateAlerts } from '../../master/monitor/alerts.js';
import { Monitor } from '../../master/monitor/monitor.js';
import { mountFor } from '../../master/monitor/sampler.js';
import { RAW_TIER, ROLLUP_TIER, type MetricSample } from '../../master/store/metrics.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { tierFor, toColumns } from '../../web-ui/pages/monitor.js';

const dir = mkdtempSync(join(tmpdir(), 'corral-monitor-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function sample(at: number, over: Partial<MetricSample> = {}): MetricSample {
  return {
    at,
    cpu: 10,
    memUsed: 1,
    memTotal: 4,
    diskUsed: 50,
    diskTotal: 100,
    netRx: 0,
    netTx: 0,
    load1: 0.1,
    ...over,
  };
}

test('raw samples roll up into five-minute averages, and pruning keeps each tier to its retention', () => {
  const repos = openRepos({ path: join(dir, 'a.db'), logger: silentLogger() });
  const base = 1_700_000_100; // 1_700_000_100 is inside the bucket starting at 1_700_000_100 - (… % 300)
  const bucket = Math.floor(base / 300) * 300;
  repos.metrics.record('master', sample(bucket + 0, { cpu: 10 }));
  repos.metrics.record('master', sample(bucket + 10, { cpu: 20 }));
  repos.metrics.record('master', sample(bucket + 20, { cpu: 60 }));
  repos.metrics.record('master', sample(bucket + 300, { cpu: 5 }));
  const raw = repos.metrics.series('master', RAW_TIER, bucket, bucket + 600);
  assert.deepEqual(
    raw.map((s) => s.cpu),
    [10, 20, 60, 5],
  );
  const rollups = repos.metrics.series('master', ROLLUP_TIER, bucket, bucket + 600);
  assert.deepEqual(
    rollups.map((s) => [s.at, s.cpu]),
    [
      [bucket, 30],
      [bucket + 300, 5],
    ],
  );
  // Raw older than bucket+300 goes, rollups stay.
  assert.equal(repos.metrics.prune(bucket + 300, 0), 3);
  assert.equal(repos.metrics.series('master', ROLLUP_TIER, bucket, bucket + 600).length, 2);
  assert.equal(repos.metrics.prune(0, bucket + 300), 1);
  assert.equal(tierFor(3600, 24), RAW_TIER);
  assert.equal(tierFor(7 * 86400, 24), ROLLUP_TIER);
  assert.deepEqual(toColumns([sample(5)]), { t: [5], cpu: [10], mem: [25], disk: [50], rx: [0], tx: [0] });
  repos.store.close();
});

test('alert rules: disk nearly full, node down only for reporting states after N intervals, backup lag', () => {
  const base = {
    lastReports: new Map([
      ['52:54:00:00:00:01', 1000],
      ['52:54:00:00:00:02', 1000],
    ]),
    nodes: [
      { mac: '52:54:00:00:00:01', name: 'n1', state: 'deployed' as const },
      { mac: '52:54:00:00:00:02', name: 'n2', state: 'deploying' as const },
      { mac: '52:54:00:00:00:03', name: 'n3', state: 'deployed' as const },
    ],
    intervalSeconds: 10,
    nodeDownIntervals: 3,
    diskAlertPercent: 90,
  };
  assert.deepEqual(evaluateAlerts({ ...base, master: sample(0), nowSeconds: 1030 }), []);
  const later = evaluateAlerts({
    ...base,
    master: sample(0, { diskUsed: 95 }),
    nowSeconds: 1031,
    backupLagSeconds: 120,
  });
  assert.deepEqual(
    later.map((a) => a.key),
    ['disk.full:master', 'node.down:52:54:00:00:00:01', 'backup.lagging'],
  );
});

test('Monitor turns alerts into alert.raised / alert.cleared events once each', async () => {
  const repos = openRepos({ path: join(dir, 'b.db'), logger: silentLogger() });
  const config = buildConfig({ dataDir: dir, monitor: { diskAlertPercent: 80 } }, { address: '10.0.0.1' });
  let disk = 85;
  let clock = 1_700_000_000_000;
  const monitor = new Monitor({
    repos,
    config,
    logger: silentLogger(),
    now: () => clock,
    sampler: async () => sample(Math.floor(clock / 1000), { diskUsed: disk }),
  });
  const seen: number[] = [];
  monitor.on('sample', () => seen.push(1));
  await monitor.tick();
  await monitor.tick();
  assert.equal(seen.length, 2);
  assert.equal(monitor.alerts().length, 1);
  disk = 50;
  clock += 10_000;
  await monitor.tick();
  assert.equal(monitor.alerts().length, 0);
  const kinds = repos.events
    .list({})
    .map((e) => e.kind)
    .reverse();
  assert.deepEqual(kinds, ['alert.raised', 'alert.cleared']);
  repos.store.close();
});

test('mountFor picks the filesystem holding the data directory', () => {
  const mounts = [
    { mount: '/' },
    { mount: '/var' },
    { mount: '/var/lib/corral' },
    { mount: '/var/lib/corralx' },
  ];
  assert.equal(mountFor(mounts, '/var/lib/corral/db')?.mount, '/var/lib/corral');
  assert.equal(mountFor(mounts, '/var/log')?.mount, '/var');
  assert.equal(mountFor(mounts, '/srv')?.mount, '/');
});
