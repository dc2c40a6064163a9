// Which subsystems an agent runs, built from its config. The one place that
// wires services together; tests and the CLI both come through here.

import type { Config } from '../config'
import type { Hal } from '../hal'
import type { Logger } from '../log'
import type { ContentIndex, PeerDirectory } from '../protocol'
import { FlashCacheService } from '../flash-cache'
import { Agent } from './agent'
import { addContent, createContent } from './content'
import { addDiscovery } from './discovery'
import { addLanProtocol, type LanProtocol } from './protocol'

export interface BuildOptions {
  peers?: PeerDirectory
  content?: ContentIndex
}

export async function buildAgent (config: Config, hal: Hal, log: Logger, options: BuildOptions = {}): Promise<Agent> {
  const agent = await Agent.create({ config, hal, log })
  // The piece store first: services added later (content, streams) find it open (`cache.cache`).
  const cache = new FlashCacheService(config.cache, hal, log.child('cache'), agent.metrics)
  agent.add(cache)
  // Discovery (issue 3): SSDP and static peers fill the peer list, the LAN
  // address book; services added after it take it as their PeerDirectory.
  let lan: LanProtocol | null = null
  const discovery = addDiscovery(agent, { udpPort: () => lan?.wire.port || config.protocol.udpPort })
  const peers = options.peers ?? discovery.peers
  // Content (issue 7): the transfers service is the index the protocol answers NEEDs from.
  const content = createContent(agent, cache)
  lan = addLanProtocol(agent, { peers, content: options.content ?? content, freeFlashBytes: () => cache.cache?.stats().freeBytes ?? 0 })
  addContent(agent, content, lan, peers)
  return agent
}
