// Which subsystems an agent runs, built from its config. The one place that
// wires services together; tests and the CLI both come through here.

import type { Config } from '../config'
import type { Hal } from '../hal'
import type { Logger } from '../log'
import { StaticPeerDirectory } from '../protocol'
import { LinkService } from '../protocol/link'
import { StreamService } from '../stream'
import { Agent } from './agent'

export async function buildAgent (config: Config, hal: Hal, log: Logger): Promise<Agent> {
  const agent = await Agent.create({ config, hal, log })
  // replaced by the SSDP peer list at merge (the link service's static peers then go into that list)
  const peers = new StaticPeerDirectory()
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
    directory: peers
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
    directory: peers
  }))
  return agent
}
