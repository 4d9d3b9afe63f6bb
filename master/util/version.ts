import { readFileSync } from 'node:fs';
import { installPath } from './paths.js';

export const VERSION: string = (
  JSON.parse(readFileSync(installPath('package.json'), 'utf8')) as { version: string }
).version;
