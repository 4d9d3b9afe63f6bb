/**
 * Peer-to-peer image distribution (issue 19): which installers fetch their image by BitTorrent, the
 * image's .torrent (the master as tracker and web seed), and how much of a wave still fetches. The
 * node-facing routes (p2p-routes.ts) and the deploy plan (deploy/boot-routes.ts) ask this; the installer
 * side is p2p_* in node-images/agent/corral-install. docs/images-p2p.md has the design and the figures.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DeploymentRecord } from '../store/deployments.js';
import type { ImageRecord } from '../store/images.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { P2pConfig } from './p2p-config.js';
import { imagePath } from './registry.js';
import { buildP2pTools } from '../../node-images/os-image-tools.js';
import { infoHash, pieceHashes, pieceLength, torrentFile } from './p2p-torrent.js';

/** Deployment phases before the image is on the node (corral-install's progress reports). */
const FETCHING_PHASES = new Set([null, 'prepare', 'write']);

/** Whether a deployment's installer still needs image bytes: it will take pieces from the wave. */
export function stillFetching(d: Pick<DeploymentRecord, 'status' | 'phase'>): boolean {
  return d.status === 'pending' || (d.status === 'installing' && FETCHING_PHASES.has(d.phase));
}

/** The wave of a deployment: unfinished deployments of the same image (itself included). */
export function waveOf(
  d: Pick<DeploymentRecord, 'imageSha256'>,
  active: readonly Pick<DeploymentRecord, 'imageSha256' | 'status'>[],
): number {
  return active.filter(
    (a) => a.imageSha256 === d.imageSha256 && (a.status === 'pending' || a.status === 'installing'),
  ).length;
}

/**
 * Whether a deployment's installer takes pieces from the master's web seed from the start: the first
 * `webSeeds` deployments of its wave (by id, so every plan fetch of the same wave agrees). The others take
 * pieces only from their peers and fall back on the web seed when no byte comes for a while
 * (corral-install p2p_web_seed): with every installer on the web seed the master's link served about N/5
 * images per wave (docs/images-p2p.md).
 */
export function webSeeder(
  d: Pick<DeploymentRecord, 'id' | 'imageSha256'>,
  active: readonly Pick<DeploymentRecord, 'id' | 'imageSha256' | 'status'>[],
  webSeeds: number,
): boolean {
  const earlier = active.filter(
    (a) =>
      a.imageSha256 === d.imageSha256 && a.id < d.id && (a.status === 'pending' || a.status === 'installing'),
  ).length;
  return earlier < webSeeds;
}

/**
 * p2p or plain HTTP for one installer, decided when it fetches its plan: by then every node of a wave
 * started together has its deployment (they were created before the nodes rebooted). Without a tracker
 * the peers cannot find each other, so plain HTTP.
 */
export function useP2p(
  mode: P2pConfig['mode'],
  minWave: number,
  webSeeds: number,
  wave: number,
  trackerRunning: boolean,
): boolean {
  if (mode === 'off' || !trackerRunning) return false;
  // A wave no larger than `webSeeds` is all web seeders: each would take every piece from the master, as
  // over plain HTTP, after fetching the p2p tools (23.3 MB) for nothing (seen in the npm start lab).
  return mode === 'on' || (wave >= minWave && wave > webSeeds);
}

export interface P2pUrls {
  /** http://MASTER:PORT/announce */
  announce: string;
  torrent: (sha256: string) => string;
  image: (sha256: string) => string;
}

/** URLs from the master's public URL: the tracker on the same host, the torrents and images under /boot. */
export function p2pUrls(publicUrl: string, trackerPort: number): P2pUrls {
  const tracker = new URL(publicUrl);
  tracker.protocol = 'http:';
  tracker.port = String(trackerPort);
  tracker.pathname = '/announce';
  return {
    announce: tracker.toString(),
    torrent: (sha) => `${publicUrl}/boot/torrents/${sha}`,
    image: (sha) => `${publicUrl}/boot/images/${sha}`,
  };
}

export interface ImagesP2pDeps {
  config: P2pConfig;
  dataDir: string;
  urls: P2pUrls;
  images: { get(sha256: string): ImageRecord | undefined };
  deployments: { active(): DeploymentRecord[]; latestFor(mac: string): DeploymentRecord | undefined };
  trackerRunning: () => boolean;
  /** Adds info-hashes to the tracker's access list (Tracker.allow). */
  allowOnTracker: (infoHashes: readonly string[]) => Promise<void>;
  logger: Logger;
}

export class ImagesP2p {
  private readonly building = new Map<string, Promise<string>>();
  private tools: Promise<string> | undefined;
  private readonly log: Logger;

  constructor(private readonly deps: ImagesP2pDeps) {
    this.log = deps.logger.child({ module: 'p2p' });
  }

  /** Extra plan.env variables for this deployment's installer; none = plain HTTP. */
  planEnv(d: DeploymentRecord): Record<string, string> {
    const { mode, minWave, seedSeconds, webSeeds } = this.deps.config;
    const active = this.deps.deployments.active();
    const wave = waveOf(d, active);
    // The tracker is asked about (and so started) only for a wave that wants p2p.
    const p2p = useP2p(mode, minWave, webSeeds, wave, true) && this.deps.trackerRunning();
    const seeder = p2p && webSeeder(d, active, webSeeds);
    this.log.info(
      { mac: d.nodeMac, deployment: d.id, wave, p2p, webSeeder: seeder },
      'image download method',
    );
    if (!p2p) return {};
    // The installer fetches aria2c next: start building it now, not when the first one asks.
    this.p2pTools().catch((err: unknown) => this.log.error({ err }, 'p2p tools not built'));
    return {
      P2P_TORRENT_URL: this.deps.urls.torrent(d.imageSha256),
      P2P_SEED_SECONDS: String(seedSeconds),
      P2P_WEB_SEED: seeder ? '1' : '0',
    };
  }

  /** Other installers of `mac`'s wave that still fetch the image: while > 0 the node seeds on. */
  waveLeft(mac: string): number {
    const d = this.deps.deployments.latestFor(mac);
    if (!d) return 0;
    return this.deps.deployments
      .active()
      .filter((a) => a.id !== d.id && a.imageSha256 === d.imageSha256 && stillFetching(a)).length;
  }

  /** aria2c and its libraries as an initrd-style archive (node-images/os-image-tools.ts), built once on demand. */
  p2pTools(): Promise<string> {
    this.tools ??= buildP2pTools(resolve(this.deps.dataDir, 'p2p')).catch((err: unknown) => {
      this.tools = undefined;
      throw err;
    });
    return this.tools;
  }

  /** The path of the image's .torrent, made once per image and set of URLs (concurrent askers share it). */
  torrentPath(sha256: string): Promise<string> {
    const image = /^[0-9a-f]{64}$/.test(sha256) ? this.deps.images.get(sha256) : undefined;
    const file = image ? imagePath(this.deps.dataDir, image) : undefined;
    if (!image || !file || !existsSync(file)) {
      return Promise.reject(new CorralError('IMAGE_NOT_FOUND', `no image with sha256 ${sha256}`));
    }
    const { announce } = this.deps.urls;
    const webSeed = this.deps.urls.image(sha256);
    const tag = createHash('sha256').update(`${announce} ${webSeed}`).digest('hex').slice(0, 12);
    const out = resolve(this.deps.dataDir, 'p2p', 'torrents', `${sha256}-${tag}.torrent`);
    if (existsSync(out)) {
      // A torrent made by an earlier run of the master: its info-hash goes on this tracker's list too.
      return readFile(`${out}.infohash`, 'utf8').then(async (h) => {
        await this.deps.allowOnTracker([h.trim()]);
        return out;
      });
    }
    let p = this.building.get(out);
    if (!p) {
      p = this.build(file, sha256, announce, webSeed, out).finally(() => this.building.delete(out));
      this.building.set(out, p);
    }
    return p;
  }

  private async build(
    file: string,
    sha256: string,
    announce: string,
    webSeed: string,
    out: string,
  ): Promise<string> {
    const started = Date.now();
    const image = this.deps.images.get(sha256);
    const piece = pieceLength(image?.sizeBytes ?? 0);
    const { pieces, length } = await pieceHashes(file, piece);
    const t = { name: sha256, length, pieceLength: piece, pieces, announce, webSeeds: [webSeed] };
    const bytes = torrentFile(t);
    const hash = infoHash(t);
    await mkdir(join(this.deps.dataDir, 'p2p', 'torrents'), { recursive: true });
    await this.deps.allowOnTracker([hash]);
    await writeFile(`${out}.infohash.tmp`, `${hash}\n`);
    await rename(`${out}.infohash.tmp`, `${out}.infohash`);
    // The torrent last: its presence marks both files complete.
    await writeFile(`${out}.tmp`, bytes);
    await rename(`${out}.tmp`, out);
    this.log.info(
      { image: sha256, pieces: pieces.length / 20, pieceLength: piece, ms: Date.now() - started },
      'torrent made',
    );
    return out;
  }
}
