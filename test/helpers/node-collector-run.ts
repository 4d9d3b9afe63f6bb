/**
 * Runs the node metrics collector on its own, for test/integration/node-metrics.test.ts: started with
 * `ip netns exec` in the test's master namespace (the only place the nodes' sshd can be reached from).
 *
 *   node node-collector-run.js CONFIG.json MAC WANT
 *
 * One direct `round()` first, then the timer (monitor.nodeSshSeconds) until MAC has WANT samples (bounded
 * to 60 s), then `stop()`. Every sample the monitor hears is printed as it happens (`sample MAC JSON`), the
 * end as `done JSON`; the debug log goes to stderr. Exit 0 unless something threw.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildConfig } from '../../master/config.js';
import { masterKeyPath } from '../../master/deploy/ssh.js';
import { Monitor } from '../../master/monitor/monitor.js';
import { NodeCollector } from '../../master/monitor/node-collector.js';
import { openRepos } from '../../master/store/repos.js';
import { createLogger } from '../../master/util/logger.js';
import { waitFor } from './netns.js';

const [configFile, mac, wantText] = process.argv.slice(2);
if (!configFile || !mac || !wantText) throw new Error('usage: node-collector-run CONFIG.json MAC WANT');
const config = buildConfig(JSON.parse(readFileSync(configFile, 'utf8')), {});
const logger = createLogger({ level: 'debug', destination: process.stderr });
const repos = openRepos({ path: join(config.dataDir, 'corral.db'), logger });
const monitor = new Monitor({
  repos,
  config,
  logger,
  // The master's own sampling is not under test and never started here.
  sampler: () => Promise.reject(new Error('not sampled in this helper')),
});
const seen = new Map<string, number>();
monitor.on('sample', ({ source, sample }) => {
  seen.set(source, (seen.get(source) ?? 0) + 1);
  process.stdout.write(`sample ${source} ${JSON.stringify(sample)}\n`);
});
const collector = new NodeCollector({
  repos,
  config,
  logger,
  monitor,
  privateKeyPath: masterKeyPath(config.dataDir),
});
const t0 = Date.now();
const firstRound = await collector.round();
const firstRoundMs = Date.now() - t0;
collector.start();
await waitFor(`${wantText} samples of ${mac}`, () => (seen.get(mac) ?? 0) >= Number(wantText), 60_000, 50);
const t1 = Date.now();
await collector.stop();
const stopMs = Date.now() - t1;
repos.store.close();
process.stdout.write(
  `done ${JSON.stringify({ firstRound, firstRoundMs, stopMs, sources: Object.fromEntries(seen) })}\n`,
);
