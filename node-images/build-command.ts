/**
 * `node dist/node-images/build-command.js [--cache-dir DIR] [--out-dir DIR] [--flavour generic|cloud]
 * [--kernel-only]`: builds the node environment from the shell (the master's CLI can call `buildNodeImage`
 * the same way); with --kernel-only it only fetches the kernel into the cache (scripts/setup.sh).
 * The only place in node-images/ that reads flags and the environment (SOURCE_DATE_EPOCH).
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../master/util/logger.js';
import { buildNodeImage, ensureKernel } from './index.js';

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'cache-dir': { type: 'string', default: '/var/cache/corral' },
      'out-dir': { type: 'string', default: './node-image' },
      flavour: { type: 'string', default: 'generic' },
      'kernel-only': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const flavour = values.flavour;
  if (flavour !== 'cloud' && flavour !== 'generic') {
    console.error(`--flavour must be cloud or generic, not '${flavour}'`);
    return 2;
  }
  if (values['kernel-only']) {
    const kernel = await ensureKernel({ cacheDir: values['cache-dir'], flavour, logger: createLogger() });
    console.log(
      `kernel ${kernel.packageName}=${kernel.packageVersion} ${kernel.fromCache ? 'cached' : 'downloaded'} ` +
        `in ${values['cache-dir']}`,
    );
    return 0;
  }
  const epochText = process.env['SOURCE_DATE_EPOCH'];
  const sourceDateEpoch = epochText && /^\d+$/.test(epochText) ? Number(epochText) : 0;
  const image = await buildNodeImage({
    cacheDir: values['cache-dir'],
    outDir: values['out-dir'],
    flavour,
    sourceDateEpoch,
    logger: createLogger(),
  });
  console.log(JSON.stringify(image, null, 2));
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
