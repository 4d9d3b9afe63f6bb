/**
 * The one redaction rule for everything an operator, a viewer or a log reader can see: the Settings page,
 * restore-point config diffs, API and console responses, error messages, events, audit rows and the log.
 *
 * Two halves, because neither is enough alone:
 * - by key: a config or log field whose name says it holds a secret (`token`, `password`, ...) is shown
 *   as "(set; hidden)", whatever its value (it may be one nobody registered);
 * - by value: the secrets the master actually holds (the HA token, the first admin password, the TLS
 *   private key, opened BMC passwords) are registered at start and replaced wherever they turn up in
 *   text, under any key or inside any message (an error quoting a command line, a URL with user-info).
 */

export const REDACTED = '(set; hidden)';

/**
 * Key names that hold a secret. `keyFile`, `certFile` and other paths stay visible (where a secret is, not
 * what it is); anything ending in token, password, passphrase, secret, privateKey or apiKey is hidden. A
 * bare `key` is not: logs use it for map keys (a DHCP warning's category, a TFTP peer); key material under
 * any name is caught by value instead (registered keys, and any PEM private key block, see `text`).
 */
const SECRET_KEY = /(token$|password$|passphrase$|secret$|privatekey$|apikey$|^authorization$)/i;

/** A PEM private key block (PKCS#8, RSA, EC, OpenSSH), whoever's it is. */
const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g;

export function isSecretKey(name: string): boolean {
  return SECRET_KEY.test(name);
}

/** A URL may carry credentials in its user-info part (http://user:pass@host); keep the rest. */
export function redactUrl(value: string): string {
  return value.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s"']*@/gi, '$1' + REDACTED + '@');
}

/** Shorter values are not registered: replacing "admin" or "1234" everywhere would garble real text. */
const MIN_SECRET_LENGTH = 8;
/** Bounds on the walk of a value, so a cyclic or huge object cannot stall a log line or a response. */
const MAX_DEPTH = 12;

/**
 * Every registered secret looked for in one pass over a text, however many are registered (the TLS key's
 * lines, the admin password, tokens, each opened BMC password): Wu and Manber's multi-pattern search
 * ("A fast algorithm for multi-pattern searching", TR-94-17, University of Arizona, 1994; agrep's).
 * A window as long as the shortest secret slides over the text; the block of BLOCK code units at its end
 * is looked up in a shift table, built from every block in every secret's first `shortest` units, which
 * says how far the window may move without passing over an occurrence. Only a block that ends some
 * secret's window (shift 0) is checked, with `startsWith`. In a page that holds no secret the window moves
 * by up to `shortest - BLOCK + 1` units, so a 110 KB console page costs about 20 000 steps whatever the
 * number of secrets, where one `includes` per secret cost a scan per secret (docs/scale.md, "Secret check
 * per response"). Code units, not code points, as `includes` compares: the answers are the same.
 */
export class SecretIndex {
  /** The shortest secret's length: the window. */
  private readonly window: number;
  /** Per block hash: how far the window may move on; 0 where a secret's window ends with such a block. */
  private readonly shift = new Uint8Array(1 << HASH_BITS);
  /** The secrets by the hash of the block that ends their window (collisions share a list). */
  private readonly byLastBlock = new Map<number, string[]>();

  constructor(secrets: Iterable<string>) {
    const list = [...secrets];
    this.window = Math.min(...list.map((s) => s.length));
    if (list.length > 0 && this.window < MIN_SECRET_LENGTH)
      throw new Error(`a secret shorter than ${MIN_SECRET_LENGTH} characters`);
    const m = this.window;
    // Capped to a byte: a window of 256 or more still moves by up to 255 (never past an occurrence).
    this.shift.fill(Math.min(m - BLOCK + 1, 255));
    for (const s of list) {
      // The block ending at q within the window: an occurrence's window end is m - 1 - q further on.
      for (let q = BLOCK - 1; q < m; q++) {
        const h = blockHash(s, q);
        this.shift[h] = Math.min(this.shift[h]!, m - 1 - q);
      }
      const h = blockHash(s, m - 1);
      const same = this.byLastBlock.get(h);
      if (same) same.push(s);
      else this.byLastBlock.set(h, [s]);
    }
  }

  /** Whether `text` holds any of the secrets (as `secrets.some((s) => text.includes(s))`). */
  foundIn(text: string): boolean {
    if (this.byLastBlock.size === 0) return false;
    const { shift, byLastBlock, window: m } = this;
    // i: the index of the window's last code unit.
    for (let i = m - 1; i < text.length;) {
      const h = blockHash(text, i);
      const step = shift[h]!;
      if (step > 0) {
        i += step;
        continue;
      }
      for (const s of byLastBlock.get(h) ?? []) if (text.startsWith(s, i - m + 1)) return true;
      i += 1;
    }
    return false;
  }
}

/** Wu-Manber's block: 3 code units (2 leave too few distinct blocks once a thousand secrets are in). */
const BLOCK = 3;
/** Bits of a block's hash: a 32 KiB shift table. */
const HASH_BITS = 15;

/** The hash of the BLOCK code units of `text` ending at `end` (multiplicative: the top bits mix them all). */
function blockHash(text: string, end: number): number {
  const x = (text.charCodeAt(end - 2) * 31 + text.charCodeAt(end - 1)) * 31 + text.charCodeAt(end);
  return Math.imul(x, 0x9e3779b1) >>> (32 - HASH_BITS);
}

/** The secret values this process holds, and the functions that hide them. */
export class Redactor {
  private readonly values = new Set<string>();
  /** Built on first use after the set changed: registering is rare, looking up is per response and log line. */
  private index: SecretIndex | undefined;

  /** Registers a secret value (and, for PEM text, its base64 body on one line). Short values are ignored. */
  add(value: string | undefined): void {
    if (!value) return;
    const trimmed = value.trim();
    if (trimmed.length < MIN_SECRET_LENGTH) return;
    this.keep(trimmed);
    const pem = /-----BEGIN [A-Z ]+-----([\s\S]+?)-----END [A-Z ]+-----/.exec(trimmed);
    if (pem?.[1]) {
      // Each line of the key too: a log or error may quote part of the file.
      for (const line of pem[1].split(/\s+/)) if (line.length >= 16) this.keep(line);
      // A body of whitespace only would be '': found in every text. Short bodies are left out as above.
      const body = pem[1].replace(/\s+/g, '');
      if (body.length >= MIN_SECRET_LENGTH) this.keep(body);
    }
  }

  private keep(value: string): void {
    if (this.values.has(value)) return;
    this.values.add(value);
    this.index = undefined;
  }

  private secrets(): SecretIndex {
    this.index ??= new SecretIndex(this.values);
    return this.index;
  }

  /** Registers every value under a secret key of a config-like object, and passwords in URLs. */
  addFromConfig(config: unknown): void {
    walk(config, '', 0, (key, v) => {
      if (typeof v !== 'string') return;
      if (isSecretKey(key)) this.add(v);
      const userinfo = /[a-z][a-z0-9+.-]*:\/\/[^/@\s:]*:([^/@\s]+)@/i.exec(v);
      if (userinfo?.[1]) this.add(decodeURIComponentSafe(userinfo[1]));
    });
  }

  /**
   * Whether `text` holds a registered secret value. Registered values only: node-facing answers carry a
   * node's own key material by design (its identity), which is not a secret of the master's.
   */
  leaks(text: string): boolean {
    return this.secrets().foundIn(text);
  }

  /** `text` with every registered secret value and URL user-info replaced. */
  text(text: string): string {
    let out = text;
    // One pass says whether any is there; only then the replacements, in registration order as before.
    if (this.secrets().foundIn(text))
      for (const s of this.values) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return redactUrl(out.replace(PEM_PRIVATE_KEY, REDACTED));
  }

  /**
   * A copy of `value` with secret keys hidden and secret values replaced in every string. Errors become
   * plain `{ type, message, stack, code }` objects (what pino's serializer would print).
   */
  value<T>(value: T): T {
    return this.copy(value, 0, new WeakSet()) as T;
  }

  private copy(v: unknown, depth: number, seen: WeakSet<object>): unknown {
    if (typeof v === 'string') return this.text(v);
    if (v === null || typeof v !== 'object') return v;
    if (depth > MAX_DEPTH || seen.has(v)) return '[…]';
    seen.add(v);
    if (Buffer.isBuffer(v) || v instanceof Date) return v;
    if (v instanceof Error) {
      const e = v as Error & { code?: unknown };
      return {
        type: e.name,
        message: this.text(e.message),
        ...(e.stack ? { stack: this.text(e.stack) } : {}),
        ...(e.code !== undefined ? { code: e.code } : {}),
      };
    }
    if (Array.isArray(v)) return v.map((x) => this.copy(x, depth + 1, seen));
    // URL, Map-like wrappers and the like print what toJSON gives (as JSON.stringify and pino would).
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return this.copy((toJSON as () => unknown).call(v), depth + 1, seen);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = isSecretKey(k) && isSet(x) ? REDACTED : this.copy(x, depth + 1, seen);
    }
    return out;
  }
}

function isSet(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '';
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function walk(v: unknown, key: string, depth: number, visit: (key: string, v: unknown) => void): void {
  visit(key, v);
  if (v === null || typeof v !== 'object' || depth > MAX_DEPTH) return;
  for (const [k, x] of Object.entries(v)) walk(x, k, depth + 1, visit);
}

/**
 * One redactor per process: the logger, the API's error handler and the response check all consult it,
 * and the master registers its secrets into it at start. Global on purpose: a secret registered by any
 * part (an opened BMC password) must be hidden from every other part's output, including log lines
 * written through loggers created before the secret was known.
 */
export const processRedactor = new Redactor();

/** For config-shaped output (settings, diffs): a dotted key's value, hidden when its last part is secret. */
export function redactSetting(dottedKey: string, value: unknown, redactor = processRedactor): unknown {
  const leaf = dottedKey.slice(dottedKey.lastIndexOf('.') + 1);
  if (isSecretKey(leaf) && isSet(value)) return REDACTED;
  return redactor.value(value);
}
