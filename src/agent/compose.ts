// Which subsystems an agent runs, built from its config. The one place that
// wires services together; tests and the CLI both come through here.

import type { Config } from '../config'
import type { Hal } from '../hal'
import type { Logger } from '../log'
import { StaticPeerDirectory, type ContentIndex, type PeerDirectory } from '../protocol'
import { Agent } from './agent'
import { addLanProtocol } from './protocol'

export interface BuildOptions {
  peers?: PeerDirectory
  content?: ContentIndex
}

export async function buildAgent (config: Config, hal: Hal, log: Logger, options: BuildOptions = {}): Promise<Agent> {
  const agent = await Agent.create({ config, hal, log })
  const peers = options.peers ?? new StaticPeerDirectory() // replaced by the SSDP peer list at merge
  addLanProtocol(agent, { peers, content: options.content })
  return agent
}
