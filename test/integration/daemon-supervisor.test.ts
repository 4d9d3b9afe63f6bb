/**
 * The shared daemon supervisor (master/daemons/supervisor.ts) against tiny real children (`sleep`,
 * `sh`), with an injected clock so the backoff delays are read and stepped instead of waited for.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor, type SupervisorClock, type SupervisorOptions } from '../../master/daemons/supervisor.js';
import { silentLogger } from '../../master/util/logger.js';

/** A clock whose timers run only when the test fires them. */
class StepClock implements SupervisorClock {
  t = 0;
  private seq = 0;
  readonly timers = new Map<number, { fn: () => void; ms: number }>();
  setTimeout(fn: () => void, ms: number): unknown {
    this.timers.set(++this.seq, { fn, ms });
    return this.seq;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  now(): number {
    return this.t;
  }
  /** Delays of the pending timers other than the ready/stop timeouts (which use 60 000 ms here). */
  restartDelays(): number[] {
    return [...this.timers.values()].filter((x) => x.ms !== 60_000).map((x) => x.ms);
  }
  fireRestart(): void {
    const entry = [...this.timers.entries()].find(([, x]) => x.ms !== 60_000);
    assert.ok(entry, 'a restart is scheduled');
    this.timers.delete(entry[0]);
    entry[1].fn();
  }
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function supervisor(clock: StepClock, over: Partial<SupervisorOptions> = {}): Supervisor {
  return new Supervisor({
    name: 'test-daemon',
    bin: 'sleep',
    args: () => ['30'],
    logger: silentLogger(),
    backoff: { initialMs: 100, maxMs: 400, stableMs: 1000 },
    readyTimeoutMs: 60_000,
    stopTimeoutMs: 60_000,
    codes: { missing: 'LB_HAPROXY_MISSING', failed: 'LB_HAPROXY_FAILED' },
    clock,
    ...over,
  });
}

describe('daemon supervisor', () => {
  it('restarts a killed child after the backoff and counts it', async () => {
    const clock = new StepClock();
    const restarted: number[] = [];
    const s = supervisor(clock, { onRestart: ({ restarts }) => restarted.push(restarts) });
    try {
      await s.start();
      const first = s.pid!;
      assert.ok(first > 0 && s.running);
      clock.t = 5000; // it stayed up longer than stableMs: the next delay is the first one
      process.kill(first, 'SIGKILL');
      await until('the restart to be scheduled', () => clock.restartDelays().length === 1);
      assert.deepEqual(clock.restartDelays(), [100]);
      assert.equal(s.status().lastExit, 'SIGKILL');
      assert.equal(s.running, false);
      clock.fireRestart();
      await until('the new child', () => s.running && s.pid !== first && restarted.length === 1);
      assert.deepEqual(restarted, [1]);
      assert.equal(s.status().restarts, 1);
      assert.equal(s.status().recoveries, 1);
    } finally {
      await s.stop();
    }
    assert.equal(s.running, false);
  });

  it('backs off 100, 200, 400, 400 ms for a child that dies right after each start', async () => {
    const clock = new StepClock();
    const s = supervisor(clock, { bin: 'sh', args: () => ['-c', 'sleep 0.05; exit 3'] });
    try {
      s.run();
      const delays: number[] = [];
      for (let i = 0; i < 4; i++) {
        await until(`restart ${i + 1} to be scheduled`, () => clock.restartDelays().length === 1);
        delays.push(...clock.restartDelays());
        clock.fireRestart();
      }
      assert.deepEqual(delays, [100, 200, 400, 400]);
      assert.equal(s.status().restarts, 4);
      assert.equal(s.status().lastExit, 'exit 3');
    } finally {
      await s.stop();
    }
    assert.deepEqual(clock.restartDelays(), [], 'stop cancels the pending restart');
  });

  it('a binary that cannot be run fails the start with the missing code; nothing restarts', async () => {
    const clock = new StepClock();
    const s = supervisor(clock, { bin: '/nonexistent/daemon' });
    await assert.rejects(s.start(), { code: 'LB_HAPROXY_MISSING' });
    assert.deepEqual(clock.restartDelays(), []);
    assert.match(s.status().lastError ?? '', /cannot run \/nonexistent\/daemon/);
  });

  it('a ready hook that fails stops the child and names its reason', async () => {
    const clock = new StepClock();
    const s = supervisor(clock, { ready: () => Promise.reject(new Error('config error at line 3')) });
    await assert.rejects(s.start(), /config error at line 3/);
    assert.equal(s.running, false);
    assert.deepEqual(clock.restartDelays(), [], 'a failed start is the caller’s to retry');
  });

  it('reloads by signal and by command, and stop escalates to SIGKILL after the timeout', async () => {
    const clock = new StepClock();
    // The child ignores TERM and USR1 (ignored dispositions survive exec): only SIGKILL ends it.
    const s = supervisor(clock, { bin: 'sh', args: () => ['-c', 'trap "" TERM USR1; exec sleep 30'] });
    try {
      await s.start();
      await new Promise((r) => setTimeout(r, 100)); // let sh reach exec with its traps set
      const pid = s.pid;
      await s.reload({ signal: 'SIGUSR1' });
      assert.equal(s.pid, pid, 'an ignored reload signal leaves the same child');
      await s.reload({ command: { bin: '/bin/true', args: [] } });
      await assert.rejects(s.reload({ command: { bin: '/bin/false', args: [] } }), {
        code: 'LB_HAPROXY_FAILED',
      });
      const stopping = s.stop();
      await until('the stop timeout to be armed', () =>
        [...clock.timers.values()].some((x) => x.ms === 60_000),
      );
      assert.equal(s.running, true, 'SIGTERM is ignored');
      for (const [id, x] of clock.timers) {
        if (x.ms !== 60_000) continue;
        clock.timers.delete(id);
        x.fn();
      }
      await stopping;
      assert.equal(s.running, false);
      assert.equal(s.status().lastExit, 'SIGKILL');
    } finally {
      await s.stop();
    }
  });
});

/**
 * A master killed with SIGKILL runs no exit handler: its daemons (haproxy, keepalived, ganesha, opentracker,
 * radvd) would run on, holding ports and the VIP. The supervisor starts them under `setpriv --pdeathsig KILL`,
 * so the kernel kills each with its master. A real master-like process here: node, a Supervisor of `sleep`.
 */
describe('daemons die with a master killed by SIGKILL', () => {
  it('the supervised child is gone once its parent process is SIGKILLed', async () => {
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const supervisorJs = fileURLToPath(new URL('../../master/daemons/supervisor.js', import.meta.url));
    const loggerJs = fileURLToPath(new URL('../../master/util/logger.js', import.meta.url));
    const script = `
      const { Supervisor } = await import(${JSON.stringify(supervisorJs)});
      const { silentLogger } = await import(${JSON.stringify(loggerJs)});
      const s = new Supervisor({ name: 'held', bin: 'sleep', args: () => ['300'], logger: silentLogger(),
        backoff: { initialMs: 100, maxMs: 400 }, codes: { missing: 'LB_HAPROXY_MISSING', failed: 'LB_HAPROXY_FAILED' } });
      await s.start();
      console.log('CHILD ' + s.pid);
      setInterval(() => undefined, 1000);
    `;
    const master = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    master.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until('the child pid', () => /CHILD \d+/.test(out), 10_000);
      const pid = Number(/CHILD (\d+)/.exec(out)![1]);
      const alive = (): boolean => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      assert.ok(alive(), 'the daemon runs while its master does');
      // The same pid is the daemon itself (setpriv execs it), so signals and reloads reach it.
      const { readFileSync } = await import('node:fs');
      assert.deepEqual(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'), ['sleep', '300', '']);
      master.kill('SIGKILL');
      await until('the daemon to die with its master', () => !alive(), 5000);
    } finally {
      master.kill('SIGKILL');
    }
  });
});
