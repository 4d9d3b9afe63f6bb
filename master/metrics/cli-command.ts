/**
 * `corral metrics scrape-config`: the fleet's Prometheus targets (file_sd JSON) from the master of the
 * current profile, or the two scrape jobs that read them (--prometheus-yml). With --out the JSON is
 * written atomically (temp file + rename): Prometheus watches file_sd files and must never read half of one.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { defineCommand, usage } from '../cli/command.js';
import { scrapeJobsYaml, type TargetGroup } from './scrape-config.js';

const HELP = `  corral metrics scrape-config [--out FILE] [--profile NAME]
  corral metrics scrape-config --prometheus-yml [--file-sd-path PATH] [--token-file PATH]
      Prometheus file_sd targets for the fleet: the master's /metrics and every deployed or diskless
      node's node-exporter (docs/metrics.md). --out FILE replaces FILE atomically (run it from cron);
      --prometheus-yml prints the two scrape jobs that read that file (--token-file: where the
      Prometheus server keeps metrics.token).
`;

export const metricsScrapeConfigCommand = defineCommand({
  path: ['metrics', 'scrape-config'],
  help: HELP,
  options: {
    profile: { type: 'string' },
    out: { type: 'string' },
    'prometheus-yml': { type: 'boolean' },
    'file-sd-path': { type: 'string' },
    'token-file': { type: 'string' },
  },
  async run({ values, positionals }, ctx) {
    if (positionals.length) usage(`unexpected argument '${positionals[0]}'`);
    if (values['prometheus-yml']) {
      ctx.out(
        scrapeJobsYaml({
          fileSdPath: values['file-sd-path'] ?? values.out ?? '/etc/prometheus/corral-targets.json',
          ...(values['token-file'] ? { tokenFile: values['token-file'] } : {}),
        }),
      );
      return 0;
    }
    const api = await ctx.api(values.profile);
    const groups = await api.call<TargetGroup[]>('GET', '/metrics/scrape-config');
    const text = `${JSON.stringify(groups, null, 2)}\n`;
    if (!values.out) {
      ctx.out(text);
      return 0;
    }
    const tmp = `${values.out}.tmp-${process.pid}`;
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, values.out);
    ctx.out(`${groups.length - 1} node target(s) and the master written to ${values.out}\n`);
    return 0;
  },
});
