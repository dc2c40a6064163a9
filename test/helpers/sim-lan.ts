// A simulated LAN of discovering agents: each node is a SimHost with one LAN
// interface, its own SimHal and identity, a Discovery, and a describe server
// on hal.net in place of the agent's HTTP server. Used by the discovery tests
// and the discovery benchmark.

import { SimClock, SimNetwork, createSeededRandom, createSimHal, type LinkConditions, type SimHal, type SimHost, type TcpServer } from '../../src/hal'
import { createKeyPair, identityFromKeyPair, type Identity } from '../../src/identity'
import { silentLogger, type Logger } from '../../src/log'
import { Discovery, serveDescribe, type DiscoveryConfig, type DescribeFetcher } from '../../src/protocol'

export const SIM_HTTP_PORT = 8787

export interface SimNode {
  name: string
  host: SimHost
  hal: SimHal
  identity: Identity
  discovery: Discovery
  server: TcpServer | null
}

export interface SimLanOptions {
  seed: number
  count: number
  conditions?: Partial<LinkConditions>
  config?: Partial<DiscoveryConfig>
  /** Third octet of 192.168.X.0/24. */
  subnet?: number
  log?: Logger
  fetcher?: (node: SimNode) => DescribeFetcher
}

export const DEFAULT_DISCOVERY: DiscoveryConfig = { enabled: true, notifyIntervalMs: 60_000, maxAgeSeconds: 300, staticPeers: [], staticRecheckMs: 60_000 }

export function identityFor (seed: number): Identity {
  return identityFromKeyPair(createKeyPair(createSeededRandom(seed)))
}

export class SimLan {
  readonly clock = new SimClock()
  readonly network: SimNetwork
  readonly nodes: SimNode[] = []

  constructor (readonly options: SimLanOptions) {
    this.network = new SimNetwork(this.clock, { seed: options.seed, conditions: { latencyMs: 1, jitterMs: 1, ...options.conditions } })
  }

  /** Add a node (not started). */
  add (extra: { address?: string, config?: Partial<DiscoveryConfig>, name?: string } = {}): SimNode {
    const i = this.nodes.length
    const name = extra.name ?? `n${i}`
    const address = extra.address ?? `192.168.${this.options.subnet ?? 1}.${i + 10}`
    const host = this.network.addHost(name, [{ nic: 'br-lan', address, prefixLength: 24 }])
    const hal = createSimHal({ seed: this.options.seed * 1000 + i, host })
    const identity = identityFor(this.options.seed * 1000 + i)
    const node: SimNode = { name, host, hal, identity, discovery: null as unknown as Discovery, server: null }
    node.discovery = new Discovery({
      clock: hal.clock,
      random: hal.random,
      nics: hal.nics,
      net: hal.net,
      log: this.options.log ?? silentLogger,
      identity,
      config: { ...DEFAULT_DISCOVERY, ...this.options.config, ...extra.config },
      httpHost: '0.0.0.0',
      httpPort: () => SIM_HTTP_PORT,
      udpPort: () => SIM_HTTP_PORT,
      name,
      version: '0.1.0',
      ...(this.options.fetcher === undefined ? {} : { fetcher: this.options.fetcher(node) })
    })
    this.nodes.push(node)
    return node
  }

  async start (node: SimNode): Promise<void> {
    node.server = await serveDescribe(node.hal.net, SIM_HTTP_PORT, (nonce) => node.discovery.describe(nonce))
    await node.discovery.start()
  }

  static async create (options: SimLanOptions): Promise<SimLan> {
    const lan = new SimLan(options)
    for (let i = 0; i < options.count; i++) lan.add()
    for (const n of lan.nodes) await lan.start(n)
    return lan
  }

  /** Does every node list every other node? */
  complete (): boolean {
    return this.nodes.every((n) => n.discovery.peers.size === this.nodes.length - 1)
  }

  /** Advance simulated time in steps until done() or maxMs passed; returns the simulated ms it took, or null. */
  async until (done: () => boolean, maxMs: number, stepMs = 10): Promise<number | null> {
    const start = this.clock.nowMs()
    while (this.clock.nowMs() - start <= maxMs) {
      if (done()) return this.clock.nowMs() - start
      await this.clock.advance(stepMs)
    }
    return done() ? this.clock.nowMs() - start : null
  }

  async stop (): Promise<void> {
    for (const n of this.nodes) {
      await n.discovery.stop()
      await n.server?.close()
    }
  }
}
