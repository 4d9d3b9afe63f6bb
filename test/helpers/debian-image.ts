/**
 * The Debian image the deploy e2e tests install: `corral image build-debian` into a master's data
 * directory (debootstrap the first time; then from the builder's cache in /var/cache/corral, keyed by
 * its inputs). Once per data directory and process, however many tests ask.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI } from '../../master/lab/master-process.js';

const exec = promisify(execFile);

export interface RegisteredImage {
  sha256: string;
  file: string;
  sizeBytes: number;
}

const built = new Map<string, Promise<RegisteredImage>>();

/**
 * Registers the image as `name` in `dataDir` (the running master's, which sees it through its database).
 * `variant` is build-debian's (`engine` adds docker.io for the apps' engine nodes: the apps-lab e2e).
 */
export function debianImage(
  dataDir: string,
  name = 'debian-12',
  variant?: 'engine',
): Promise<RegisteredImage> {
  const key = `${dataDir}\0${name}`;
  let p = built.get(key);
  if (!p) {
    p = (async () => {
      const t0 = Date.now();
      const { stdout } = await exec(
        'node',
        [
          CLI,
          'image',
          'build-debian',
          '--name',
          name,
          ...(variant ? ['--variant', variant] : []),
          '--data-dir',
          dataDir,
          '--json',
        ],
        { timeout: 1_800_000 },
      );
      const image = JSON.parse(stdout) as RegisteredImage;
      console.log(`# image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${image.sizeBytes} bytes`);
      return image;
    })();
    built.set(key, p);
  }
  return p;
}
