/**
 * `corral login URL`, `corral logout`, `corral profile list|use NAME`: the `maas login` / kubectl-context
 * habit. Login pins the certificate the master presents (asking the operator on first use), checks the
 * password against the API, and only then writes the profile.
 */
import { join } from 'node:path';
import { profileClient } from './api-client.js';
import { defineCommand, usage, type CliContext } from './command.js';
import { endpointOf, fetchFingerprint } from './pinned-tls.js';
import {
  configDir,
  normaliseFingerprint,
  PROFILES_FILE,
  readProfiles,
  selectProfile,
  writeProfiles,
  type Profile,
} from './profiles.js';
import { readAllStdin, readLine } from './prompt.js';
import { CorralError } from '../util/errors.js';

/** Loopback names and addresses: traffic to them never leaves this machine. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * https://HOST[:PORT][/prefix]; a bare host means https. Plain http would send the password in clear, so
 * it is taken only for a loopback address (the virtual lab's console forward, a tunnel's local end).
 */
export function masterUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    return usage(`'${text}' is not a URL (expected https://MASTER[:PORT])`);
  }
  const plainLoopback = url.protocol === 'http:' && isLoopback(url.hostname);
  if (url.protocol !== 'https:' && !plainLoopback) {
    usage(`the CLI talks to the master over HTTPS (plain http only on loopback); use https://${url.host}`);
  }
  if (url.username || url.password || url.search || url.hash)
    usage('give the user with --user, not in the URL');
  return url;
}

/** The URL as profiles keep it: no trailing slash. */
function baseOf(url: URL): string {
  return url.href.replace(/\/$/, '');
}

/** Decides whether to trust the presented certificate; throws when the operator did not agree. */
async function trust(
  ctx: CliContext,
  url: URL,
  presented: string,
  previous: Profile | undefined,
  given: string | undefined,
  yes: boolean,
): Promise<void> {
  if (given !== undefined) {
    const want = normaliseFingerprint(given);
    if (!want) usage(`--fingerprint must be 64 hex digits (colons allowed), got '${given}'`);
    if (want !== presented) {
      throw new CorralError(
        'TLS_FINGERPRINT_MISMATCH',
        `the master at ${url.host} presented certificate sha256 ${presented}, not the sha256 ${want} given with --fingerprint`,
      );
    }
    return;
  }
  const pinned = previous?.url === baseOf(url) ? previous.fingerprint256 : undefined;
  if (pinned === presented) return;
  if (pinned) {
    // The certificate changed under a profile that trusted another: never accepted by --yes alone.
    ctx.err(
      `WARNING: the master at ${url.host} now presents certificate\n  sha256 ${presented}\n` +
        `but this profile pinned\n  sha256 ${pinned}\n`,
    );
    const answer = await readLine(ctx.stdin, ctx.err, 'Type "replace" to trust the new certificate: ', true);
    if (answer.trim() !== 'replace') throw mismatchRefused(url, pinned, presented);
    return;
  }
  ctx.err(`The master at ${url.host} presents a certificate with fingerprint\n  sha256 ${presented}\n`);
  if (yes) return;
  ctx.err(
    'Compare it with the master log ("console on HTTPS" line) or, on the master,\n' +
      '  openssl x509 -in DATA_DIR/tls/cert.pem -noout -fingerprint -sha256\n',
  );
  const answer = await readLine(ctx.stdin, ctx.err, 'Trust this certificate? [y/N] ', true);
  if (!/^y(es)?$/i.test(answer.trim()))
    throw new CorralError('USAGE', 'certificate not trusted; nothing saved');
}

function mismatchRefused(url: URL, pinned: string, presented: string): CorralError {
  return new CorralError(
    'TLS_FINGERPRINT_MISMATCH',
    `the master at ${url.host} presented sha256 ${presented}, pinned sha256 ${pinned}; not replaced (give --fingerprint to accept it)`,
  );
}

export const loginCommand = defineCommand({
  path: ['login'],
  help: `  corral login URL [--user NAME] [--profile NAME] [--password-stdin] [--yes | --fingerprint SHA256]
      Log in to a master (https://MASTER[:PORT]): pins its certificate's SHA-256 fingerprint (asked on
      first use unless --yes or --fingerprint), checks the password (asked without echo, or read from
      stdin with --password-stdin) and saves a profile in ~/.config/corral/profiles.json (mode 0600;
      $CORRAL_CONFIG_DIR elsewhere). The new profile becomes the current one. --user defaults to admin,
      --profile to the URL's host. Plain http:// only to a loopback address (nothing to pin), such as
      the console forward \`corral lab\` prints.
`,
  options: {
    user: { type: 'string', default: 'admin' },
    profile: { type: 'string' },
    'password-stdin': { type: 'boolean' },
    yes: { type: 'boolean' },
    fingerprint: { type: 'string' },
  },
  async run({ values, positionals }, ctx) {
    const [target, ...extra] = positionals;
    if (!target) usage('usage: corral login URL [--user NAME] [--profile NAME]');
    if (extra.length) usage(`unexpected argument '${extra[0]}'`);
    const url = masterUrl(target);
    const name = values.profile ?? url.host;
    const dir = configDir(ctx.env);
    const file = readProfiles(dir);
    let presented: string | undefined;
    if (url.protocol === 'https:') {
      presented = await fetchFingerprint(endpointOf(url));
      await trust(ctx, url, presented, file.profiles[name], values.fingerprint, values.yes ?? false);
    } else {
      if (values.fingerprint !== undefined) usage('--fingerprint needs an https:// URL');
      ctx.err(`plain HTTP to ${url.host} (loopback): no certificate to pin\n`);
    }
    const password = values['password-stdin']
      ? await readAllStdin(ctx.stdin)
      : await readLine(ctx.stdin, ctx.err, `Password for ${values.user} at ${url.host}: `, false);
    if (!password) usage('empty password');
    const profile: Profile = {
      url: baseOf(url),
      user: values.user,
      password,
      ...(presented ? { fingerprint256: presented } : {}),
      createdAt: new Date().toISOString(),
    };
    // Any authenticated read proves the password; one event is the smallest answer the API has.
    await profileClient(profile).call('GET', '/events?limit=1');
    writeProfiles(dir, { current: name, profiles: { ...file.profiles, [name]: profile } });
    ctx.out(
      `logged in to ${profile.url} as ${profile.user}; profile '${name}' saved in ${join(dir, PROFILES_FILE)}\n`,
    );
    return 0;
  },
});

export const logoutCommand = defineCommand({
  path: ['logout'],
  help: `  corral logout [--profile NAME]
      Forget the current profile (or NAME), its password included.
`,
  options: { profile: { type: 'string' } },
  async run({ values, positionals }, ctx) {
    if (positionals.length) usage(`unexpected argument '${positionals[0]}'`);
    const dir = configDir(ctx.env);
    const file = readProfiles(dir);
    const { name } = selectProfile(file, values.profile);
    const profiles = { ...file.profiles };
    delete profiles[name];
    writeProfiles(dir, {
      ...(file.current && file.current !== name ? { current: file.current } : {}),
      profiles,
    });
    ctx.out(`logged out of '${name}'\n`);
    return 0;
  },
});

export const profileCommand = defineCommand({
  path: ['profile'],
  verbs: ['list', 'use'],
  help: `  corral profile list [--json] | use NAME
      The saved masters (* marks the current one); \`use\` makes NAME current.
`,
  options: { json: { type: 'boolean' } },
  async run({ values, positionals }, ctx) {
    const [verb, name, ...extra] = positionals;
    if (extra.length) usage(`unexpected argument '${extra[0]}'`);
    const dir = configDir(ctx.env);
    const file = readProfiles(dir);
    switch (verb) {
      case 'list': {
        const rows = Object.entries(file.profiles).map(([n, p]) => ({
          name: n,
          current: n === file.current,
          url: p.url,
          user: p.user,
          fingerprint256: p.fingerprint256,
        }));
        if (values.json) ctx.out(`${JSON.stringify(rows, null, 2)}\n`);
        else if (!rows.length) ctx.out('no profiles: run `corral login https://MASTER`\n');
        else
          ctx.out(
            rows
              .map(
                (r) =>
                  `${r.current ? '*' : ' '} ${r.name}  ${r.url}  ${r.user}  ${r.fingerprint256 ? `sha256 ${r.fingerprint256.slice(0, 23)}…` : 'plain HTTP (loopback)'}\n`,
              )
              .join(''),
          );
        return 0;
      }
      case 'use': {
        if (!name) usage('usage: corral profile use NAME');
        selectProfile(file, name);
        writeProfiles(dir, { ...file, current: name });
        ctx.out(`now using '${name}'\n`);
        return 0;
      }
      default:
        return usage('usage: corral profile list | use NAME');
    }
  },
});
