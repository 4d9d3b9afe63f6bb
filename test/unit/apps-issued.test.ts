/**
 * A failed rollout is recognised after a master restart (issue 21, master/apps/service.ts): the engine
 * reports `rollback_completed` until the next update, and that is the failure of the current declaration
 * only if Corral sent it. What was sent is stored with the declaration (apps.issued, migration 25), not kept
 * in memory, so a new master (a restart, a failover) reading the same store still adopts the version before
 * instead of rolling the failing version out again; a new declaration made after the rollback is sent.
 * The engine here is a scripted `docker` (service inspect as swarm prints it, updates recorded): the
 * engine's own side of a rollback is apps-swarm's (real dockerd in swarm mode).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Apps, hash } from '../../master/apps/service.js';
import { AppSpecSchema } from '../../master/apps/app-spec.js';
import { APPS_CONFIG_DEFAULTS } from '../../master/apps/config.js';
import type { Docker, DockerResult } from '../../master/apps/engine.js';
import { silentLogger } from '../../master/util/logger.js';
import { tempRepos } from '../helpers/repos.js';

const M = { name: 'eng1', mac: '52:54:00:21:00:01', host: '10.21.0.11' };
const ok = (stdout: string): DockerResult => ({ ok: true, stdout, stderr: '', error: null });

/** A manager whose service is at `engineVersion`, labelled as carrying the declaration `applied`. */
class ScriptedEngine implements Docker {
  updates: string[][] = [];
  constructor(public state: { engineVersion: number; applied: string; update?: string }) {}
  async run(_node: unknown, args: readonly string[]): Promise<DockerResult> {
    const [a, b] = args;
    if (a === 'service' && b === 'inspect')
      return ok(
        JSON.stringify([
          {
            Spec: {
              Labels: { 'corral.app': 'web', 'corral.applied': this.state.applied },
              TaskTemplate: {
                ContainerSpec: { Labels: { 'corral.version': String(this.state.engineVersion) } },
              },
            },
            ...(this.state.update
              ? { UpdateStatus: { State: this.state.update, Message: 'update rolled back' } }
              : {}),
          },
        ]),
      );
    if (a === 'service' && b === 'update') {
      this.updates.push([...args]);
      return ok('web');
    }
    if (a === 'service' && b === 'ps') return ok('');
    return { ok: false, stdout: '', stderr: `not scripted: ${args.join(' ')}`, error: 'exited 1' };
  }
}

const spec = (v: string) =>
  AppSpecSchema.parse({ name: 'web', command: ['httpd', '-f'], instances: 2, env: { V: v } });

test('a rollback of the declaration sent before a master restart is adopted by the new master; a later declaration is sent', async () => {
  const t = tempRepos();
  const engine = new ScriptedEngine({ engineVersion: 1, applied: hash(JSON.stringify(spec('v1'))) });
  const apps = () =>
    new Apps({
      config: APPS_CONFIG_DEFAULTS,
      repos: t.repos,
      docker: engine,
      logger: silentLogger(),
      baseImage: 'reg:5000/corral/base',
    });
  type Reconciling = { reconcileApp(name: string, m: typeof M): Promise<void> };
  const reconcile = (a: Apps): Promise<void> => (a as unknown as Reconciling).reconcileApp('web', M);
  try {
    const first = apps();
    await first.put(spec('v1'), 'admin', 'create');
    await reconcile(first);
    assert.equal(engine.updates.length, 0, 'the engine runs version 1 already');
    // Version 2 is declared and sent; what was sent is stored.
    await first.put(spec('v2'), 'admin', 'replace');
    await reconcile(first);
    assert.equal(engine.updates.length, 1);
    assert.equal(t.repos.apps.get('web')?.issued, hash(JSON.stringify(spec('v2'))));

    // The master restarts while the engine rolls version 2 back (its health gate failed).
    engine.state = {
      engineVersion: 1,
      applied: hash(JSON.stringify(spec('v1'))),
      update: 'rollback_completed',
    };
    const second = apps();
    await reconcile(second);
    const row = t.repos.apps.get('web')!;
    assert.equal(row.version, 1, 'the declaration followed the engine back to version 1');
    assert.equal(row.issued, null, 'the failed declaration is spent');
    assert.equal(engine.updates.length, 1, 'the failing version was not rolled out again');
    const events = t.repos.events.list({ limit: 20 }).map((e) => e.kind);
    assert.ok(events.includes('app.rolled-back'), events.join(', '));

    // A fix declared while the engine still says rollback_completed (same version number, 2): sent.
    await second.put(spec('v2-fixed'), 'admin', 'replace');
    assert.equal(t.repos.apps.get('web')?.version, 2);
    await reconcile(second);
    assert.equal(engine.updates.length, 2, 'the new declaration was sent');
    assert.equal(t.repos.apps.get('web')?.version, 2, 'and not taken for the old rollback');
  } finally {
    t.cleanup();
  }
});
