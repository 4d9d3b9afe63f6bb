/**
 * OS deployment as a feature (issue 5): the master's SSH key, the deploy service (rebooting nodes
 * through their power driver where they have one), its stall watchdog, the installer tools (a second
 * initrd built in the background), the images/deploy API and the Images console page.
 */
import express from 'express';
import type { FrozenConfig } from '../config.js';
import type { ConsolePages, Started } from '../feature.js';
import { nodeImageDir } from '../boot/node-image.js';
import type { Repos } from '../store/repos.js';
import type { BeforeRisky } from '../util/before-risky.js';
import type { Logger } from '../util/logger.js';
import { buildInstallerTools } from '../../node-images/os-image-tools.js';
import { mountImages } from '../../web-ui/pages/images.js';
import { createDeployApiRouter } from './api.js';
import { createDeployer, type Deployer, type DeployPower } from './deployer.js';
import { ensureMasterKey } from './ssh.js';

export interface DeployFeatureDeps {
  config: FrozenConfig;
  repos: Repos;
  logger: Logger;
  power: DeployPower;
  /** Awaited before an image delete and a bulk deploy (an automatic restore point). */
  beforeRisky: BeforeRisky;
}

export interface DeployExposed {
  deployer: Deployer;
  /** The installer tools initrd once built (undefined until then, or when it could not be built). */
  installerTools(): string | undefined;
  /** Settles when the build ends: its path, or undefined when it failed (logged). */
  installerToolsBuilt: Promise<string | undefined>;
}

export async function startDeploy(deps: DeployFeatureDeps): Promise<Started<DeployExposed>> {
  const { config, repos, logger, beforeRisky } = deps;
  const deployer = createDeployer({
    repos,
    config,
    logger,
    key: await ensureMasterKey(config.dataDir),
    power: deps.power,
  });
  const stopWatch = deployer.watch();
  let tools: string | undefined;
  const installerToolsBuilt = buildInstallerTools(nodeImageDir(config.dataDir)).then(
    (path) => (tools = path),
    (err: unknown) => void logger.warn({ err }, 'installer tools not built: deploys cannot run'),
  );
  return {
    deployer,
    installerTools: () => tools,
    installerToolsBuilt,
    api: createDeployApiRouter({ repos, config, logger, deployer, beforeRisky }),
    pages: deployPages(deployer, beforeRisky),
    close: async () => stopWatch(),
  };
}

/** The Images page (the node deploy pages are node pages, given the deployer by the console). */
export function deployPages(deployer: Deployer, beforeRisky?: BeforeRisky): ConsolePages {
  return (ctx) => {
    const router = express.Router();
    mountImages(router, ctx, deployer, beforeRisky);
    return router;
  };
}
