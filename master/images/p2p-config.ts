/**
 * The `p2p` section of the master config (README "Peer-to-peer image downloads", docs/images-p2p.md):
 * whether installers fetch images by BitTorrent from each other, and the master's tracker. Mounted into
 * ConfigSchema by one line in config.ts.
 */
import { z } from 'zod';

export const P2pConfigSchema = z
  .object({
    /**
     * `auto`: an installer gets the torrent when, as it fetches its plan, at least `minWave` deployments of
     * the same image are pending or installing (a wave); a node deployed alone streams its image over HTTP
     * straight into the disk, which p2p (file first, then unpack) would only slow down. `on`: always.
     * `off`: never, and no tracker runs.
     */
    mode: z.enum(['auto', 'on', 'off']).default('auto'),
    minWave: z.number().int().min(2).max(100_000).default(2),
    /** opentracker's TCP and UDP port on the master's address. */
    trackerPort: z.number().int().min(1).max(65535).default(6969),
    /** How long an installer that has the whole image keeps seeding for the rest of its wave, at most. */
    seedSeconds: z.number().int().min(0).max(3600).default(120),
    /**
     * How many installers of a wave (its first deployments) take pieces from the master's web seed from
     * the start; the others take them from their peers, and from the web seed only when no byte came for
     * 10 s.
     */
    webSeeds: z.number().int().min(1).max(100_000).default(2),
    /** The tracker binary (Debian package opentracker). */
    trackerBin: z.string().min(1).default('opentracker'),
  })
  .strict();

export type P2pConfig = z.infer<typeof P2pConfigSchema>;

export const P2P_CONFIG_DEFAULTS: P2pConfig = {
  mode: 'auto',
  minWave: 2,
  trackerPort: 6969,
  seedSeconds: 120,
  webSeeds: 2,
  trackerBin: 'opentracker',
};
