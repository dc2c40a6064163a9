// Which subsystems an agent runs, built from its config. The one place that
// wires services together; tests and the CLI both come through here.

import type { Config } from '../config'
import type { Hal } from '../hal'
import type { Logger } from '../log'
import { FlashCacheService } from '../flash-cache'
import { Agent } from './agent'

export async function buildAgent (config: Config, hal: Hal, log: Logger): Promise<Agent> {
  const agent = await Agent.create({ config, hal, log })
  // The piece store first: services added later (content, streams) find it open (`cache.cache`).
  const cache = new FlashCacheService(config.cache, hal, log.child('cache'), agent.metrics)
  agent.add(cache)
  return agent
}
