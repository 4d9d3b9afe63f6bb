/**
 * User-data from layers (issue 16): #cloud-config fragments for all nodes, a role, a tag and one node,
 * each a Handlebars template over the node's facts, rendered, parsed and merged in that order into the
 * one #cloud-config a node reads. Pure: the store and the HTTP routes are elsewhere (service.ts).
 *
 * Merge rule, the one cloud-init itself offers as `list(append)+dict(recurse_array)+str()` for
 * multi-part user-data: mappings merge key by key, lists append (a node's `runcmd` runs after its
 * role's), and any other value of a later layer replaces the earlier one.
 *
 * Templates are rendered on the whole text before it is parsed, as cloud-init's own `## template: jinja`
 * does: every variable is of a restricted alphabet (a DNS label, an address, a MAC, a role, a URL), so
 * none can add YAML structure. Unknown variables are errors (Handlebars strict mode), found when the layer
 * is saved.
 */
import Handlebars from 'handlebars';
import type { CloudInitLayerRecord, LayerScope } from '../store/cloud-init-layers.js';
import { CorralError } from '../util/errors.js';
import { dumpYaml, parseYaml, type Octal } from './yaml.js';

/** What a template may name: {{hostname}}, {{ip}}, {{role}}, {{master}}, {{mac}}, {{tags}}, ... */
export interface TemplateVars {
  hostname: string;
  name: string;
  mac: string;
  /** The node's address ('' when none is known yet). */
  ip: string;
  role: string;
  /** The master's base URL as nodes reach it (http.publicUrl). */
  master: string;
  /** The node's tags (issue 16's tags, when the node record has them); `{{#each tags}}` or `{{tags}}` (a,b). */
  tags: string[];
  instanceId: string;
}

/** The facts of a node that choose its layers. `tags` is read when the node record carries it. */
export interface LayerSubject {
  mac: string;
  role: string | null;
  tags?: readonly string[] | undefined;
}

/** A node's tags if its record has them (the enrolment-rules work adds `tags: string[]` to nodes). */
export function nodeTags(node: object): string[] {
  const t = (node as { tags?: unknown }).tags;
  return Array.isArray(t) ? t.filter((x): x is string => typeof x === 'string') : [];
}

const SCOPE_ORDER: Record<LayerScope, number> = { global: 0, role: 1, tag: 2, node: 3 };

/** The layers that apply to `subject`, in merge order: global, its role, its tags (by name), itself. */
export function selectLayers<L extends Pick<CloudInitLayerRecord, 'scope' | 'target'>>(
  layers: readonly L[],
  subject: LayerSubject,
): L[] {
  const tags = new Set(subject.tags ?? []);
  return layers
    .filter(
      (l) =>
        l.scope === 'global' ||
        (l.scope === 'role' && subject.role !== null && l.target === subject.role) ||
        (l.scope === 'tag' && tags.has(l.target)) ||
        (l.scope === 'node' && l.target === subject.mac),
    )
    .sort((a, b) => SCOPE_ORDER[a.scope] - SCOPE_ORDER[b.scope] || a.target.localeCompare(b.target));
}

type Plain = null | boolean | number | string | Octal | Plain[] | { [k: string]: Plain };

/** A YAML mapping: a plain object (not a list, nor a scalar kept as an object such as Octal). */
function isMapping(v: unknown): v is Record<string, Plain> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** `list(append)+dict(recurse_array)`: see the module comment. Neither input is modified. */
export function mergeCloudConfig(
  base: Record<string, Plain>,
  over: Record<string, Plain>,
): Record<string, Plain> {
  const out: Record<string, Plain> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    if (isMapping(prev) && isMapping(v)) out[k] = mergeCloudConfig(prev, v);
    else if (Array.isArray(prev) && Array.isArray(v)) out[k] = [...prev, ...v];
    else out[k] = v;
  }
  return out;
}

const compiled = new Map<string, Handlebars.TemplateDelegate>();

function renderText(text: string, vars: TemplateVars): string {
  let tpl = compiled.get(text);
  if (!tpl) {
    // noEscape: the output is YAML, not HTML. strict: a misspelt {{hostnme}} is an error, not ''.
    tpl = Handlebars.compile(text, { noEscape: true, strict: true });
    if (compiled.size > 500) compiled.clear();
    compiled.set(text, tpl);
  }
  return tpl(vars);
}

/** Why a layer is not a cloud-config fragment, or undefined when it is one. */
export function layerProblem(content: string, vars: TemplateVars): string | undefined {
  let text: string;
  try {
    text = renderText(content, vars);
  } catch (err) {
    return `its template does not render: ${(err as Error).message.split('\n')[0] ?? ''}`;
  }
  const parsed = parseYaml(text);
  if ('problem' in parsed) {
    return `it is not YAML${parsed.problem.line ? ` (line ${parsed.problem.line})` : ''}: ${parsed.problem.message}`;
  }
  if (parsed.value === null || parsed.value === undefined) return undefined; // empty (or comments only)
  if (!isMapping(parsed.value)) {
    return 'a cloud-config is a mapping of module keys (write_files:, runcmd:, ...), not a list or a scalar';
  }
  return undefined;
}

/** One layer rendered and parsed; CLOUDINIT_LAYER_INVALID naming the layer when it fails. */
function layerConfig(layer: CloudInitLayerRecord, vars: TemplateVars): Record<string, Plain> {
  const problem = layerProblem(layer.content, vars);
  if (problem) {
    throw new CorralError('CLOUDINIT_LAYER_INVALID', `cloud-init layer ${describeLayer(layer)}: ${problem}`);
  }
  const parsed = parseYaml(renderText(layer.content, vars));
  return 'value' in parsed && isMapping(parsed.value) ? parsed.value : {};
}

export function describeLayer(l: Pick<CloudInitLayerRecord, 'scope' | 'target'>): string {
  return l.scope === 'global' ? 'global' : `${l.scope} ${l.target}`;
}

/** The #cloud-config text a node reads: its layers rendered with `vars` and merged, global first. */
export function renderUserData(layers: readonly CloudInitLayerRecord[], vars: TemplateVars): string {
  let merged: Record<string, Plain> = {};
  for (const l of layers) merged = mergeCloudConfig(merged, layerConfig(l, vars));
  return `#cloud-config\n${Object.keys(merged).length ? dumpYaml(merged) : '{}\n'}`;
}
