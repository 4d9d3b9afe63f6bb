/**
 * What an admin declares for a load-balanced service (issue #7). Validated once at the API/CLI edge; the
 * renderer and the store only ever see a parsed `ServiceSpec`, so the HAProxy config is built from
 * values that cannot break its syntax (names are labels, paths have no spaces, numbers are bounded).
 */
import { z } from 'zod';
import { TAG } from '../nodes/tags.js';

/** HAProxy proxy/server names allow more, but a DNS-label-like name is safe in configs, URLs and CSV. */
export const SERVICE_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const ROLE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const port = z.number().int().min(1).max(65535);

export const HealthCheckSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('http'),
      /** Request path of the check: printable ASCII without spaces (it goes on HAProxy's request line). */
      path: z
        .string()
        .regex(/^\/[\x21-\x7e]{0,254}$/, 'must start with / and hold no spaces or control characters')
        .default('/'),
      expectStatus: z.number().int().min(100).max(599).default(200),
    })
    .strict(),
  z.object({ type: z.literal('tcp') }).strict(),
]);

export const ServiceSpecSchema = z
  .object({
    name: z.string().regex(SERVICE_NAME, 'must be 1-32 lower-case letters, digits, - or _'),
    /** Front-end port on the master's address (or the VIP). */
    port,
    protocol: z.enum(['http', 'tcp']).default('http'),
    /**
     * Nodes serving it: every node with this role, every node with this tag, or a fixed list of names/MACs;
     * or `members`, instances each on its own port of a node (an app on the bridge network: several per node).
     */
    role: z.string().regex(ROLE, 'must be 1-32 lower-case letters, digits, - or _').optional(),
    tag: z.string().regex(TAG, 'must be 1-32 lower-case letters, digits, -, _, . or :').optional(),
    nodes: z.array(z.string().min(1).max(64)).min(1).max(256).optional(),
    members: z
      .array(z.object({ node: z.string().min(1).max(64), port }).strict())
      .min(1)
      .max(256)
      .optional(),
    backendPort: port,
    balance: z.enum(['roundrobin', 'leastconn']).default('roundrobin'),
    check: HealthCheckSchema.default({ type: 'tcp' }),
    /** HAProxy `inter` (ms), `rise` and `fall`: down after `fall` failed checks, up after `rise` good ones. */
    intervalMs: z.number().int().min(100).max(3_600_000).default(2000),
    rise: z.number().int().min(1).max(100).default(2),
    fall: z.number().int().min(1).max(100).default(3),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ([s.role, s.tag, s.nodes, s.members].filter((v) => v !== undefined).length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['role'],
        message: 'give exactly one of role, tag, nodes or members',
      });
    }
  });

export type ServiceSpec = z.infer<typeof ServiceSpecSchema>;

/** Who serves it, in a few words: for events, the console and the CLI. */
export function servedBy(spec: ServiceSpec, sep = ', '): string {
  if (spec.role) return `role ${spec.role}`;
  if (spec.tag) return `tag ${spec.tag}`;
  if (spec.members) return spec.members.map((m) => `${m.node}:${m.port}`).join(sep);
  return (spec.nodes ?? []).join(sep);
}

export const ADMIN_STATES = ['ready', 'drain', 'maint'] as const;
export type AdminState = (typeof ADMIN_STATES)[number];
