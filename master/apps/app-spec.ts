/**
 * What an operator declares for an app (issue 21). Validated once at the API/CLI edge; the docker argument
 * builder (docker-args.ts) only ever sees a parsed `AppSpec`, whose names are labels and whose numbers are
 * bounded, so no value can become a docker flag of its own (arguments are passed as argv, quoted for SSH).
 */
import { z } from 'zod';
import { TAG } from '../nodes/tags.js';

/** Docker service names allow more; a DNS label keeps the LB service and DNS-SD names (`_<app>._tcp`) valid. */
export const APP_NAME = /^[a-z][a-z0-9-]{0,27}$/;
const ROLE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** An OCI reference: registry[:port]/path[:tag][@digest], no spaces or shell-looking characters. */
const IMAGE = /^[a-z0-9][a-z0-9._:/@-]{0,254}$/i;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const port = z.number().int().min(1).max(65535);
const seconds = (max: number) => z.number().int().min(0).max(max);
const arg = z.string().min(1).max(4096);

export const AppSpecSchema = z
  .object({
    name: z.string().regex(APP_NAME, 'must be a letter then up to 27 lower-case letters, digits or -'),
    /** The command line (argv); run in `image`, or in the base image Corral builds when no image is given. */
    command: z.array(arg).min(1).max(64).optional(),
    image: z
      .string()
      .regex(IMAGE, 'must be an OCI image reference such as registry:5000/name:tag')
      .optional(),
    instances: z.number().int().min(0).max(256).default(1),
    /** Where instances may run: engine nodes with this role or tag (spread across nodes either way). */
    placement: z
      .object({
        role: z.string().regex(ROLE, 'must be 1-32 lower-case letters, digits, - or _').optional(),
        tag: z.string().regex(TAG, 'must be 1-32 lower-case letters, digits, -, _, . or :').optional(),
      })
      .strict()
      .refine((p) => !(p.role && p.tag), 'give a role or a tag, not both')
      .default({}),
    /**
     * `host`: containers use the node's network stack, so an app with ports runs one instance per node.
     * `bridge`: dockerd's default bridge, each declared port published in host mode on a free port the
     * engine picks per task, so several instances share a node. Fixed for the app's life (docker-args.ts).
     */
    network: z.enum(['host', 'bridge']).default('host'),
    /**
     * Published in host mode: each instance listens on its node's address (what HAProxy balances over), on
     * the port itself (`network: host`) or on the one the engine gave its task (`bridge`).
     */
    ports: z
      .array(
        z
          .object({
            port,
            protocol: z.enum(['tcp', 'udp']).default('tcp'),
            /** Front-end port of the app's HAProxy service on the master/VIP; none: not load-balanced. */
            lbPort: port.optional(),
          })
          .strict(),
      )
      .max(16)
      .default([]),
    env: z
      .record(z.string().regex(ENV_KEY, 'environment names are letters, digits and _'), z.string().max(4096))
      .default({}),
    healthCheck: z
      .object({
        /** Run in the container (CMD form); exit 0 is healthy. */
        command: z.array(arg).min(1).max(64),
        intervalSeconds: z.number().int().min(1).max(3600).default(5),
        timeoutSeconds: z.number().int().min(1).max(3600).default(3),
        retries: z.number().int().min(1).max(100).default(3),
        startPeriodSeconds: seconds(3600).default(0),
      })
      .strict()
      .optional(),
    /** Seconds between SIGTERM and SIGKILL when a task stops (a PID 1 that ignores SIGTERM waits all of it). */
    stopGraceSeconds: seconds(3600).default(10),
    restart: z
      .object({
        condition: z.enum(['any', 'on-failure', 'none']).default('any'),
        delaySeconds: seconds(3600).default(1),
        /** 0: no limit. */
        maxAttempts: z.number().int().min(0).max(1000).default(0),
      })
      .strict()
      .default({ condition: 'any', delaySeconds: 1, maxAttempts: 0 }),
    update: z
      .object({
        /** Instances replaced at once (the batch). */
        parallelism: z.number().int().min(1).max(256).default(1),
        delaySeconds: seconds(3600).default(5),
        failureAction: z.enum(['rollback', 'pause', 'continue']).default('rollback'),
        /** How long a new instance must stay up before the batch counts as a success. */
        monitorSeconds: z.number().int().min(1).max(3600).default(10),
        order: z.enum(['stop-first', 'start-first']).default('stop-first'),
      })
      .strict()
      .default({
        parallelism: 1,
        delaySeconds: 5,
        failureAction: 'rollback',
        monitorSeconds: 10,
        order: 'stop-first',
      }),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (!s.command && !s.image) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'give a command, an image, or both' });
    }
    if (s.ports.filter((p) => p.lbPort !== undefined).length > 1) {
      ctx.addIssue({ code: 'custom', path: ['ports'], message: 'one port per app can have an lbPort' });
    }
    if (s.ports.some((p) => p.lbPort !== undefined && p.protocol !== 'tcp')) {
      ctx.addIssue({ code: 'custom', path: ['ports'], message: 'HAProxy balances tcp ports only' });
    }
    if (new Set(s.ports.map((p) => `${p.port}/${p.protocol}`)).size !== s.ports.length) {
      ctx.addIssue({ code: 'custom', path: ['ports'], message: 'a port is listed twice' });
    }
  });

export type AppSpec = z.infer<typeof AppSpecSchema>;

/** A version is what a rollout replaces: the parts of the spec that end up in the containers. */
export function versionedPart(s: AppSpec): unknown {
  return {
    command: s.command ?? null,
    image: s.image ?? null,
    env: s.env,
    healthCheck: s.healthCheck ?? null,
  };
}
