/**
 * Repository names and tags as the registry API accepts them (distribution's reference grammar,
 * docs/spec/api.md "Overview"): a name is path components of lower-case alphanumerics joined by one
 * `.`, one or two `_`, or any number of `-`, separated by `/`, 255 characters at most; a tag is
 * `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. Checked before any request, so `../x` or `a b` never becomes a
 * URL path (an encoded `..` would still reach the registry's router) and the operator gets one
 * REGISTRY_NAME_INVALID naming the bad part.
 */
import { CorralError } from '../util/errors.js';

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MAX_NAME = 255;

export interface ImageReference {
  repository: string;
  tag: string;
}

export function checkRepository(name: string): string {
  if (!name || name.length > MAX_NAME || !name.split('/').every((c) => COMPONENT.test(c))) {
    throw new CorralError(
      'REGISTRY_NAME_INVALID',
      `repository name ${JSON.stringify(name)} is not valid: lower-case letters and digits, separated by . _ __ or -, components joined by /`,
    );
  }
  return name;
}

export function checkTag(tag: string): string {
  if (!TAG.test(tag)) {
    throw new CorralError(
      'REGISTRY_NAME_INVALID',
      `tag ${JSON.stringify(tag)} is not valid: up to 128 letters, digits, _ . -, not starting with . or -`,
    );
  }
  return tag;
}

/**
 * `name:tag` (no digest) into its checked parts. With `dropHost`, a leading registry host (`HOST:PORT/`,
 * a first component with `.` or `:`, or `localhost`: distribution's rule) is removed: a `docker save` of
 * `10.0.0.1:5000/corral/base:x` names its tag that way, and the push goes to our registry anyway.
 */
export function parseReference(ref: string, opts: { dropHost?: boolean } = {}): ImageReference {
  const slash = ref.indexOf('/');
  const first = slash > 0 ? ref.slice(0, slash) : '';
  const name = opts.dropHost && (/[.:]/.test(first) || first === 'localhost') ? ref.slice(slash + 1) : ref;
  const colon = name.lastIndexOf(':');
  // A colon before the last slash belongs to a host:port, which the name must not have here.
  if (colon < 0 || colon < name.lastIndexOf('/')) {
    throw new CorralError('REGISTRY_NAME_INVALID', `${JSON.stringify(ref)} is not NAME:TAG`);
  }
  return { repository: checkRepository(name.slice(0, colon)), tag: checkTag(name.slice(colon + 1)) };
}
