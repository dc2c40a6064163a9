// Which subsystems an agent runs, built from its config. The one place that
// wires services together; tests and the CLI both come through here.

import type { Config } from '../config'
import type { Hal } from '../hal'
import type { Logger } from '../log'
import type { ContentIndex, PeerDirectory } from '../protocol'
import { FlashCacheService } from '../flash-cache'
import { createFramePool, createLinkService, type LinkService } from '../protocol/link'
import { STREAM_FRAME_POOL_SLACK_BYTES, STREAM_FRAME_SLOT_BYTES } from '../limits'
import { createStreamService } from '../stream'
import { addGroupRoutes, GroupsService, KeyShares } from '../groups'
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
  let link: LinkService | null = null
  const discovery = addDiscovery(agent, {
    udpPort: () => lan?.wire.port || config.protocol.udpPort,
    linkPort: () => link?.host.listenPort || null
  })
  const peers = options.peers ?? discovery.peers
  // Content (issue 7): the transfers service is the index the protocol answers NEEDs from.
  const content = createContent(agent, cache)
  lan = addLanProtocol(agent, { peers, content: options.content ?? content, freeFlashBytes: () => cache.cache?.stats().freeBytes ?? 0 })
  addContent(agent, content, lan, peers)
  // Chunk frames: received into, kept in and forwarded from one preallocated pool (bounded RSS).
  const poolBytes = 2 * config.stream.ringBytes + STREAM_FRAME_POOL_SLACK_BYTES
  const pool = createFramePool(STREAM_FRAME_SLOT_BYTES, Math.ceil(poolBytes / STREAM_FRAME_SLOT_BYTES / 64) * 64)
  // Groups (issue 6): each link's hello carries an X25519 share that seals the group channel.
  const shares = config.groups.enabled ? new KeyShares() : null
  link = createLinkService({
    net: hal.net,
    clock: hal.clock,
    random: hal.random,
    identity: agent.identity,
    log: log.child('link'),
    host: config.link.host ?? config.http.host,
    port: config.link.port ?? (config.http.port === 0 || config.http.port === 65535 ? 0 : config.http.port + 1),
    channels: shares === null ? ['stream'] : ['stream', 'group'],
    allow: (remote) => agent.allows(remote),
    pool,
    extension: shares === null ? undefined : () => shares.next()
  })
  agent.add(link)
  agent.add(createStreamService({
    hal,
    identity: agent.identity,
    config: config.stream,
    log: log.child('stream'),
    http: agent.http,
    metrics: agent.metrics,
    links: link.host,
    directory: peers,
    pool
  }))
  if (shares !== null) {
    const groups = new GroupsService({ hal, config, identity: agent.identity, log: log.child('groups'), links: link.host, shares, peers, lan: (remote) => agent.allows(remote) })
    agent.add(groups)
    addGroupRoutes(agent.http, groups)
  }
  return agent
}
