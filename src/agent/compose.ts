// Which subsystems an agent runs, built from its config. The one place that
// wires services together; tests and the CLI both come through here.

import type { Config } from '../config'
import type { Hal } from '../hal'
import type { Logger } from '../log'
import { StaticPeerDirectory } from '../protocol'
import { FramePool, LinkService } from '../protocol/link'
import { STREAM_FRAME_POOL_SLACK_BYTES, STREAM_FRAME_SLOT_BYTES } from '../limits'
import { StreamService } from '../stream'
import { Agent } from './agent'

export async function buildAgent (config: Config, hal: Hal, log: Logger): Promise<Agent> {
  const agent = await Agent.create({ config, hal, log })
  // replaced by the SSDP peer list at merge (the link service's static peers then go into that list)
  const peers = new StaticPeerDirectory()
  // Chunk frames: received into, kept in and forwarded from one preallocated pool (bounded RSS).
  const poolBytes = 2 * config.stream.ringBytes + STREAM_FRAME_POOL_SLACK_BYTES
  const pool = new FramePool(STREAM_FRAME_SLOT_BYTES, Math.ceil(poolBytes / STREAM_FRAME_SLOT_BYTES / 64) * 64)
  const link = new LinkService({
    net: hal.net,
    clock: hal.clock,
    random: hal.random,
    identity: agent.identity,
    log: log.child('link'),
    host: config.link.host ?? config.http.host,
    port: config.link.port ?? (config.http.port === 0 || config.http.port === 65535 ? 0 : config.http.port + 1),
    peers: config.link.peers,
    channels: ['stream'],
    allow: (remote) => agent.allows(remote),
    directory: peers,
    pool
  })
  agent.add(link)
  agent.add(new StreamService({
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
  return agent
}
