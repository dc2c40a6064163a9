// Which subsystems an agent runs, built from its config. The one place that
// wires services together; tests and the CLI both come through here.

import type { Config } from '../config'
import type { Hal } from '../hal'
import type { Logger } from '../log'
import { Agent } from './agent'
import { addDiscovery } from './discovery'

export async function buildAgent (config: Config, hal: Hal, log: Logger): Promise<Agent> {
  const agent = await Agent.create({ config, hal, log })
  // Discovery (issue 3): SSDP and static peers fill the peer list, the LAN
  // address book; services added after it take `discovery.peers` as their PeerDirectory.
  const discovery = addDiscovery(agent)
  log.debug('peer list ready', { peersMax: discovery.peers.countMax })
  return agent
}
