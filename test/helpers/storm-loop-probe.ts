/**
 * Preloaded into the master by the boot-storm bench (`NODE_OPTIONS=--import <this file>`, with
 * STORM_PROBE_FILE naming where to write): once a second, one JSON line with the event loop's delay over
 * that second (perf_hooks.monitorEventLoopDelay, beyond its 20 ms timer) and the process's CPU. It says
 * whether a slow answer under the storm is the master's loop being blocked (delay), busy (CPU) or neither
 * (waiting elsewhere). Nothing in the master imports it.
 *
 * With STORM_PROFILE_FILE set it also runs V8's CPU profiler (node's --cpu-prof is refused in
 * NODE_OPTIONS) and writes the .cpuprofile there on SIGUSR2, which the bench sends before stopping the
 * master.
 */
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** One second of the master's loop, as the bench reads it back (test/bench/boot-storm-bench.ts). */
export interface LoopSample {
  /** When the second ended (Date.now()): the bench keeps the seconds of its storm. */
  at: number;
  /** Event-loop delay in ms over the second: p99 and max. */
  p99: number;
  max: number;
  /** CPU (user + system) used in the second, ms. */
  cpu: number;
}

const RESOLUTION_MS = 20;
const file = process.env['STORM_PROBE_FILE'];
if (file) {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  let cpu = process.cpuUsage();
  const ms = (ns: number): number => Math.max(0, Math.round(ns / 1e5) / 10 - RESOLUTION_MS);
  setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const s: LoopSample = {
      at: Date.now(),
      p99: ms(h.percentile(99)),
      max: ms(h.max),
      cpu: Math.round((used.user + used.system) / 1000),
    };
    h.reset();
    appendFileSync(file, JSON.stringify(s) + '\n');
  }, 1000).unref();
}

const profileFile = process.env['STORM_PROFILE_FILE'];
if (profileFile) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable', () =>
    // 1 ms sampling (V8's default is 1 ms too, but say it): a storm lasts a minute or two.
    session.post('Profiler.setSamplingInterval', { interval: 1000 }, () => session.post('Profiler.start')),
  );
  process.once('SIGUSR2', () => {
    session.post('Profiler.stop', (err, r) => {
      // Written aside, then renamed: the bench waits for the name, and must not read half a file.
      writeFileSync(
        `${profileFile}.part`,
        err ? JSON.stringify({ error: err.message }) : JSON.stringify(r.profile),
      );
      renameSync(`${profileFile}.part`, profileFile);
    });
  });
}
