/**
 * The master's CPU cost of SSH sampling, for test/bench/node-sampling-bench.ts: started with `ip netns exec`
 * in the bench's master namespace, it runs the real NodeCollector's rounds over the nodes in CONFIG's data
 * directory and prints the process's CPU time per sample.
 *
 *   node node-sampling-run.js CONFIG.json ROUNDS
 *
 * The first round opens the SSH sessions (handshakes) and is reported apart; the next ROUNDS rounds reuse
 * them, as the collector does between its timer ticks. Prints one line `done JSON`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildConfig } from '../../master/config.js';
import { masterKeyPath } from '../../master/deploy/ssh.js';
import { Monitor } from '../../master/monitor/monitor.js';
import { NodeCollector } from '../../master/monitor/node-collector.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';

const [configFile, roundsText] = process.argv.slice(2);
if (!configFile || !roundsText) throw new Error('usage: node-sampling-run CONFIG.json ROUNDS');
const config = buildConfig(JSON.parse(readFileSync(configFile, 'utf8')), {});
const logger = silentLogger();
const repos = openRepos({ path: join(config.dataDir, 'corral.db'), logger });
const monitor = new Monitor({
  repos,
  config,
  logger,
  sampler: () => Promise.reject(new Error('not sampled in this helper')),
});
const collector = new NodeCollector({
  repos,
  config,
  logger,
  monitor,
  privateKeyPath: masterKeyPath(config.dataDir),
});
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

let c = process.cpuUsage();
let t = performance.now();
const connected = await collector.round();
const first = { samples: connected, cpuMs: cpuMs(process.cpuUsage(c)), wallMs: performance.now() - t };
c = process.cpuUsage();
t = performance.now();
let samples = 0;
for (let i = 0; i < Number(roundsText); i++) samples += await collector.round();
const steady = { samples, cpuMs: cpuMs(process.cpuUsage(c)), wallMs: performance.now() - t };
await collector.stop();
repos.store.close();
process.stdout.write(`done ${JSON.stringify({ first, steady })}\n`);
