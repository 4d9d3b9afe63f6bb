/**
 * The `registry` section of the master config (docs/registry.md): the image registry on the master
 * (Debian's docker-registry, distribution v2) that holds the apps' images and Corral's base image, so an
 * engine node pulls from the provisioning network, never from the internet. Mounted into ConfigSchema by
 * one line in config.ts.
 */
import { z } from 'zod';
import { ipv4 } from '../util/net-schema.js';

export const RegistryConfigSchema = z
  .object({
    /** Off by default: a master that runs no apps runs no registry. */
    enabled: z.boolean().default(false),
    /** TCP port of the registry's HTTP API on `bind` (plain HTTP: docs/registry.md, insecure-registries). */
    port: z.number().int().min(1).max(65535).default(5000),
    /** Address to listen on; defaults to the master's provisioning address (`address`). */
    bind: ipv4.optional(),
    /** The registry binary (Debian package docker-registry). */
    bin: z.string().min(1).default('docker-registry'),
    /**
     * The registered OS image (corral image build-debian) whose tree becomes `corral/base:<baseTag>`,
     * pushed in the background when the registry starts and it is registered (skipped when the registry
     * already holds that exact manifest). Empty: never pushed automatically (`corral registry push-base`).
     */
    baseImage: z.string().default('debian-12'),
    baseTag: z.string().min(1).default('debian-12'),
  })
  .strict();

export type RegistryConfig = z.infer<typeof RegistryConfigSchema>;

export const REGISTRY_CONFIG_DEFAULTS: RegistryConfig = {
  enabled: false,
  port: 5000,
  bin: 'docker-registry',
  baseImage: 'debian-12',
  baseTag: 'debian-12',
};

/** The repository Corral's own base image is pushed to; the engine refers to `<registry>/corral/base:<tag>`. */
export const BASE_REPOSITORY = 'corral/base';
