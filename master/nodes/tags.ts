/**
 * Node tags (issue 16): free-form labels an operator or an enrolment rule puts on a node, and that
 * services, exec, bulk actions and rules select by. Lower-case so `Web` and `web` cannot both exist; `.`
 * and `:` allowed for namespaced tags such as `rack:a3` or `os.debian`. Pure.
 */
import { CorralError } from '../util/errors.js';

export const TAG = /^[a-z0-9][a-z0-9_.:-]{0,31}$/;
/** A node holds at most this many tags: enough for rack, row, purpose and a few groups, and bounded. */
export const MAX_TAGS = 32;

export function checkTag(tag: string): string {
  if (!TAG.test(tag)) {
    throw new CorralError(
      'TAG_INVALID',
      `'${tag.slice(0, 40)}' is not a tag: use 1-32 lower-case letters, digits, -, _, . or :`,
    );
  }
  return tag;
}

export interface TagChange {
  /** Replaces every tag (applied first). */
  set?: readonly string[] | undefined;
  add?: readonly string[] | undefined;
  remove?: readonly string[] | undefined;
}

/** The node's tags after `change`, sorted and unique; TAG_INVALID for a bad tag or too many. */
export function applyTagChange(current: readonly string[], change: TagChange): string[] {
  const tags = new Set(change.set ? change.set.map(checkTag) : current);
  for (const t of change.add ?? []) tags.add(checkTag(t));
  for (const t of change.remove ?? []) tags.delete(t);
  if (tags.size > MAX_TAGS) {
    throw new CorralError(
      'TAG_INVALID',
      `a node holds at most ${MAX_TAGS} tags (this change leaves ${tags.size})`,
    );
  }
  return [...tags].sort();
}

/**
 * Parses the CLI's `+a -b c` words: `+t` or a bare word adds, `-t` removes. Empty words are refused so a
 * stray `+` does not pass silently.
 */
export function parseTagWords(words: readonly string[]): { add: string[]; remove: string[] } {
  const add: string[] = [];
  const remove: string[] = [];
  for (const w of words) {
    const tag = w.replace(/^[+-]/, '');
    checkTag(tag);
    (w.startsWith('-') ? remove : add).push(tag);
  }
  return { add, remove };
}
