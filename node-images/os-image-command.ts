/**
 * `node dist/node-images/os-image-command.js [--cache-dir DIR]`: builds (or finds cached) the small Debian
 * OS image and prints its facts as JSON. `corral image build-debian` does the same and also imports it.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../master/util/logger.js';
import { buildOsImage } from './os-image.js';

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { 'cache-dir': { type: 'string', default: '/var/cache/corral' } },
    strict: true,
  });
  const image = await buildOsImage({ cacheDir: values['cache-dir'], logger: createLogger() });
  console.log(JSON.stringify(image, null, 2));
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      console.error((err as Error).message);
      process.exitCode = 1;
    },
  );
}
