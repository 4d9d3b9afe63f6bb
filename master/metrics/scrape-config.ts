/**
 * The fleet's Prometheus scrape configuration (issue 19): file_sd targets (Prometheus'
 * `file_sd_configs`, https://prometheus.io/docs/prometheus/latest/configuration/configuration/#file_sd_config)
 * for every deployed or diskless node's prometheus-node-exporter and for the master's /metrics, and the two
 * scrape jobs that read them. Pure: the API and the CLI give it the nodes and the master's address.
 */

/** One file_sd target group. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

export interface ScrapeInput {
  /** host:port of the master's HTTP listener as Prometheus reaches it. */
  master: string;
  nodes: readonly { name: string; mac: string; ip: string; role: string | null }[];
  nodeExporterPort: number;
}

/** Node states whose OS runs node-exporter (it is in the images Corral builds; node-images/). */
export const SCRAPED_STATES = ['deployed', 'diskless'] as const;

/**
 * One group for the master and one per node, so each node's series carry its Corral name and role
 * (labels `corral_node`, `corral_role`); `corral_kind` tells the two jobs apart.
 */
export function fileSdTargets(input: ScrapeInput): TargetGroup[] {
  return [
    { targets: [input.master], labels: { corral_kind: 'master' } },
    ...input.nodes.map((n) => ({
      targets: [`${n.ip}:${input.nodeExporterPort}`],
      labels: {
        corral_kind: 'node',
        corral_node: n.name,
        corral_mac: n.mac,
        ...(n.role ? { corral_role: n.role } : {}),
      },
    })),
  ];
}

export interface JobOptions {
  /** Path of the file_sd JSON on the Prometheus server. */
  fileSdPath: string;
  /** Path of a file holding metrics.token on the Prometheus server; omitted = scrape the master unauthenticated (loopback). */
  tokenFile?: string;
  scrapeIntervalSeconds?: number;
}

/** `scrape_configs` entries (YAML) for the two jobs; JSON strings are valid YAML scalars, so paths are quoted safely. */
export function scrapeJobsYaml(o: JobOptions): string {
  const q = (s: string): string => JSON.stringify(s);
  const interval = `${o.scrapeIntervalSeconds ?? 15}s`;
  const job = (name: string, kind: string, extra: string[]): string[] => [
    `  - job_name: ${q(name)}`,
    `    scrape_interval: ${interval}`,
    ...extra,
    '    file_sd_configs:',
    `      - files: [${q(o.fileSdPath)}]`,
    '    relabel_configs:',
    '      - source_labels: [corral_kind]',
    `        regex: ${kind}`,
    '        action: keep',
  ];
  return [
    'scrape_configs:',
    ...job('corral-master', 'master', [
      '    metrics_path: /metrics',
      ...(o.tokenFile ? ['    authorization:', `      credentials_file: ${q(o.tokenFile)}`] : []),
    ]),
    ...job('corral-nodes', 'node', []),
    '',
  ].join('\n');
}
