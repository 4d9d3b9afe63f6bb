/**
 * YAML as cloud-init reads it. cloud-init parses with PyYAML's safe_load, which is YAML 1.1: `yes`, `on`,
 * `off` are booleans and `0644` is octal (420). js-yaml's schemas are YAML 1.2, where those are the
 * string "yes" and the decimal 644, so a layer written for cloud-init would change meaning on its way
 * through the master's merge (a `permissions: 0644` would become mode 01204). This schema resolves plain
 * scalars the YAML 1.1 way (https://yaml.org/type/bool.html, https://yaml.org/type/int.html) for the
 * types cloud-config uses; dumping with it quotes any string that would read back as another type.
 */
import yaml from 'js-yaml';

const BOOL_TRUE = /^(?:y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const BOOL_FALSE = /^(?:n|N|no|No|NO|false|False|FALSE|off|Off|OFF)$/;

const bool11 = new yaml.Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (d) => typeof d === 'string' && (BOOL_TRUE.test(d) || BOOL_FALSE.test(d)),
  construct: (d) => BOOL_TRUE.test(String(d)),
  predicate: (d) => typeof d === 'boolean',
  represent: (d) => (d ? 'true' : 'false'),
});

/**
 * An int written in YAML 1.1 octal (`0644`), kept as written: PyYAML reads it as 420 whether the
 * operator wrote it in one layer or the master passed it on, so the master hands it on untouched
 * rather than as `420`, which reads the same to cloud-init but not to the operator comparing texts.
 */
export class Octal {
  constructor(readonly text: string) {}
  get value(): number {
    const t = this.text.replace(/_/g, '');
    return (t.startsWith('-') ? -1 : 1) * parseInt(t.replace(/^[-+]?0/, ''), 8);
  }
}

/** YAML 1.1 ints: 0o-less octal (`0644`), hex, and decimal with optional `_` separators. */
const OCTAL11 = /^[-+]?0[0-7_]+$/;
const HEX = /^[-+]?0x[0-9a-fA-F_]+$/;
const DECIMAL = /^[-+]?(?:0|[1-9][0-9_]*)$/;

function parseInt11(text: string): number | Octal {
  if (OCTAL11.test(text)) return new Octal(text);
  const t = text.replace(/_/g, '');
  const sign = t.startsWith('-') ? -1 : 1;
  const body = t.replace(/^[-+]/, '');
  return sign * (body.startsWith('0x') ? parseInt(body.slice(2), 16) : parseInt(body, 10));
}

const int11 = new yaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (d) => typeof d === 'string' && (OCTAL11.test(d) || HEX.test(d) || DECIMAL.test(d)),
  construct: (d) => parseInt11(String(d)),
  predicate: (d) => d instanceof Octal || (typeof d === 'number' && Number.isInteger(d) && !Object.is(d, -0)),
  represent: (d) => (d instanceof Octal ? d.text : String(d)),
});

export const CLOUD_CONFIG_SCHEMA = yaml.FAILSAFE_SCHEMA.extend({
  implicit: [yaml.types.null, bool11, int11, yaml.types.float],
});

export interface YamlProblem {
  message: string;
  line?: number | undefined;
}

/** Parses `text`; a problem (with its 1-based line) instead of a throw. */
export function parseYaml(text: string): { value: unknown } | { problem: YamlProblem } {
  try {
    return { value: yaml.load(text, { schema: CLOUD_CONFIG_SCHEMA }) };
  } catch (err) {
    if (err instanceof yaml.YAMLException) {
      return { problem: { message: err.reason, line: err.mark ? err.mark.line + 1 : undefined } };
    }
    throw err;
  }
}

export function dumpYaml(value: unknown): string {
  return yaml.dump(value, { schema: CLOUD_CONFIG_SCHEMA, lineWidth: -1, noRefs: true });
}
