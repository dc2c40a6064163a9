// Which subsystems an agent runs, built from its config. The one place that
// wires services together; tests and the CLI both come through here.

import type { Config } from '../config'
import type { Hal } from '../hal'
import type { Logger } from '../log'
import { Agent } from './agent'

export async function buildAgent (config: Config, hal: Hal, log: Logger): Promise<Agent> {
  const agent = await Agent.create({ config, hal, log })
  return agent
}
