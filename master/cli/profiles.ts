/**
 * The CLI's profiles (`corral login` writes them, every remote command reads them): which master, as
 * whom, and the SHA-256 fingerprint of the certificate it presented at login. One JSON file, mode 0600 in
 * a 0700 directory, because it holds the password (docs/decisions.md: the API only has Basic auth).
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { CorralError } from '../util/errors.js';

export const PROFILES_FILE = 'profiles.json';

const ProfileSchema = z
  .object({
    url: z.string().url(),
    user: z.string().min(1),
    password: z.string(),
    /** Upper-case hex pairs joined by ':' (as Node and `openssl x509 -fingerprint -sha256` print it). */
    fingerprint256: z
      .string()
      .regex(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
      .optional(),
    createdAt: z.string(),
  })
  .strict()
  // Only a plain-HTTP loopback profile (`corral login http://127.0.0.1:8080`) has no certificate to pin.
  .refine((p) => p.fingerprint256 !== undefined || p.url.startsWith('http://'), {
    message: 'an https profile needs its pinned fingerprint256',
    path: ['fingerprint256'],
  });

const FileSchema = z
  .object({
    current: z.string().optional(),
    profiles: z.record(z.string(), ProfileSchema),
  })
  .strict();

export type Profile = z.infer<typeof ProfileSchema>;
export type ProfilesFile = z.infer<typeof FileSchema>;

/** $CORRAL_CONFIG_DIR, else $XDG_CONFIG_HOME/corral, else ~/.config/corral. */
export function configDir(env: Readonly<Record<string, string | undefined>>): string {
  if (env['CORRAL_CONFIG_DIR']) return env['CORRAL_CONFIG_DIR'];
  if (env['XDG_CONFIG_HOME']) return join(env['XDG_CONFIG_HOME'], 'corral');
  if (!env['HOME']) {
    throw new CorralError(
      'CLI_PROFILES_UNWRITABLE',
      'neither HOME nor CORRAL_CONFIG_DIR is set: nowhere to keep profiles',
    );
  }
  return join(env['HOME'], '.config', 'corral');
}

export function readProfiles(dir: string): ProfilesFile {
  const path = join(dir, PROFILES_FILE);
  if (!existsSync(path)) return { profiles: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CorralError(
      'CONFIG_INVALID',
      `${path} is not valid JSON (${(err as Error).message}); remove it and log in again`,
    );
  }
  const r = FileSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new CorralError(
      'CONFIG_INVALID',
      `${path}: ${issue?.path.join('.')}: ${issue?.message}; remove it and log in again`,
    );
  }
  return r.data;
}

/**
 * Writes the whole file: a temp file created 0600 (never wider, whatever the umask), then an atomic
 * rename, so a reader sees the old profiles or the new ones and never a half-written password file.
 */
export function writeProfiles(dir: string, file: ProfilesFile): void {
  const path = join(dir, PROFILES_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A directory made by someone else keeps its owner, but ours must not be readable by others.
    if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
    writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'w' });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CorralError(
      'CLI_PROFILES_UNWRITABLE',
      `cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** The named profile, or the current one; a clear error when there is none. */
export function selectProfile(
  file: ProfilesFile,
  name: string | undefined,
): { name: string; profile: Profile } {
  const chosen = name ?? file.current;
  if (!chosen) {
    throw new CorralError('CLI_NOT_LOGGED_IN', 'no master selected: run `corral login https://MASTER` first');
  }
  const profile = file.profiles[chosen];
  if (!profile) {
    const known = Object.keys(file.profiles);
    throw new CorralError(
      'CLI_PROFILE_NOT_FOUND',
      `no profile '${chosen}'${known.length ? ` (profiles: ${known.join(', ')})` : ''}: run \`corral login URL --profile ${chosen}\``,
    );
  }
  return { name: chosen, profile };
}

/**
 * Accepts 64 hex digits with or without ':', with an optional "SHA256:" or "sha256 " prefix (the CLI's
 * own messages print the latter, so a copied line works); returns Node's form.
 */
export function normaliseFingerprint(text: string): string | undefined {
  const hex = text
    .replace(/^sha256:?/i, '')
    .replace(/[:\s]/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}
