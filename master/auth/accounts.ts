/**
 * User administration shared by the API and the console: create, change role, reset password, delete.
 * Corral always keeps at least one admin, and a password reset or deletion ends the user's sessions.
 */
import { z } from 'zod';
import type { Repos } from '../store/repos.js';
import type { Role } from '../store/users.js';
import { CorralError } from '../util/errors.js';
import { hashPassword } from './passwords.js';

export const ROLES = ['admin', 'operator', 'viewer'] as const satisfies readonly Role[];

export const UserName = z
  .string()
  .regex(
    /^[a-z][a-z0-9._-]{0,31}$/,
    'must be 1-32 lower-case letters, digits, ".", "_" or "-", starting with a letter',
  );
/** Long enough to resist guessing within the login rate limit; no composition rules (NIST SP 800-63B). */
export const Password = z.string().min(12, 'must be at least 12 characters').max(1024);

function admins(repos: Repos): number {
  return repos.users.list().filter((u) => u.role === 'admin').length;
}

function existing(repos: Repos, name: string): { name: string; role: Role; passwordHash: string } {
  const user = repos.users.get(name);
  if (!user) throw new CorralError('USER_NOT_FOUND', `no user named '${name}'`);
  return user;
}

export async function createUser(
  repos: Repos,
  input: { name: string; role: Role; password: string },
  actor: string,
): Promise<void> {
  if (repos.users.get(input.name)) throw new CorralError('CONFLICT', `a user named '${input.name}' exists`);
  const hash = await hashPassword(input.password);
  repos.store.write((journal) => {
    // Checked again inside the transaction: two concurrent creations must not both pass.
    if (repos.users.get(input.name)) throw new CorralError('CONFLICT', `a user named '${input.name}' exists`);
    repos.users.upsertIn(journal, input.name, hash, input.role);
    repos.events.appendIn(journal, {
      kind: 'user.created',
      message: `${actor} created user ${input.name} (${input.role})`,
      actor,
    });
  });
}

export function setRole(repos: Repos, name: string, role: Role, actor: string): void {
  repos.store.write((journal) => {
    const user = existing(repos, name);
    if (user.role === role) return;
    if (user.role === 'admin' && admins(repos) <= 1) {
      throw new CorralError('LAST_ADMIN', `${name} is the only admin and cannot be demoted`);
    }
    repos.users.upsertIn(journal, name, user.passwordHash, role);
    repos.events.appendIn(journal, {
      kind: 'user.role',
      message: `${actor} changed ${name}'s role from ${user.role} to ${role}`,
      actor,
    });
  });
}

export async function resetPassword(
  repos: Repos,
  name: string,
  password: string,
  actor: string,
): Promise<void> {
  existing(repos, name);
  const hash = await hashPassword(password);
  repos.store.write((journal) => {
    const user = existing(repos, name);
    repos.users.upsertIn(journal, name, hash, user.role);
    repos.events.appendIn(journal, {
      kind: 'user.password',
      message: name === actor ? `${name} changed their password` : `${actor} reset ${name}'s password`,
      actor,
    });
  });
  repos.accounts.endSessions(name);
}

export function deleteUser(repos: Repos, name: string, actor: string): void {
  repos.store.write((journal) => {
    const user = existing(repos, name);
    if (user.role === 'admin' && admins(repos) <= 1) {
      throw new CorralError('LAST_ADMIN', `${name} is the only admin and cannot be deleted`);
    }
    repos.accounts.clearTotpIn(journal, name);
    repos.users.deleteIn(journal, name);
    repos.events.appendIn(journal, { kind: 'user.deleted', message: `${actor} deleted user ${name}`, actor });
  });
  repos.accounts.endSessions(name);
}
