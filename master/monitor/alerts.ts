/** Pure alert rules: from the newest facts to the set of alerts that should be active now. */
import type { MetricSample } from '../store/metrics.js';
import type { NodeRecord } from '../store/nodes.js';

export interface Alert {
  /** Stable identity: the same condition keeps the same key until it clears. */
  key: string;
  kind: 'disk.full' | 'node.down' | 'backup.lagging';
  severity: 'warning' | 'error';
  message: string;
  nodeMac?: string;
}

export interface AlertInput {
  master: MetricSample | undefined;
  /** Node MAC → epoch seconds of its newest metrics report. */
  lastReports: ReadonlyMap<string, number>;
  nodes: readonly Pick<NodeRecord, 'mac' | 'name' | 'state'>[];
  nowSeconds: number;
  /** How often a node is expected to report. */
  intervalSeconds: number;
  nodeDownIntervals: number;
  diskAlertPercent: number;
  /** Seconds the backup master is behind, when HA reports it. */
  backupLagSeconds?: number | undefined;
  backupLagAlertSeconds?: number;
}

/** Only nodes that run an OS report metrics; a node being (re)deployed or retired is expected to go quiet. */
const REPORTING_STATES = new Set(['deployed', 'diskless']);

export function evaluateAlerts(input: AlertInput): Alert[] {
  const alerts: Alert[] = [];
  const m = input.master;
  if (m && m.diskUsed !== null && m.diskTotal) {
    const pct = (m.diskUsed / m.diskTotal) * 100;
    if (pct >= input.diskAlertPercent) {
      alerts.push({
        key: 'disk.full:master',
        kind: 'disk.full',
        severity: pct >= 98 ? 'error' : 'warning',
        message: `The master's data disk is ${pct.toFixed(1)}% full (alert at ${input.diskAlertPercent}%).`,
      });
    }
  }
  const silentAfter = input.intervalSeconds * input.nodeDownIntervals;
  for (const node of input.nodes) {
    const last = input.lastReports.get(node.mac);
    if (last === undefined || !REPORTING_STATES.has(node.state)) continue;
    const silent = input.nowSeconds - last;
    if (silent > silentAfter) {
      alerts.push({
        key: `node.down:${node.mac}`,
        kind: 'node.down',
        severity: 'error',
        message: `${node.name} has not reported for ${Math.round(silent)} s (expected every ${input.intervalSeconds} s).`,
        nodeMac: node.mac,
      });
    }
  }
  const lag = input.backupLagSeconds;
  if (lag !== undefined && lag > (input.backupLagAlertSeconds ?? 60)) {
    alerts.push({
      key: 'backup.lagging',
      kind: 'backup.lagging',
      severity: 'warning',
      message: `The backup master is ${Math.round(lag)} s behind the primary.`,
    });
  }
  return alerts;
}
