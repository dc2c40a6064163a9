// A simulated LAN of Canopy nodes for protocol tests and the benchmark: one
// SimNetwork, a SimHal per node, a StaticPeerDirectory per node filled with
// the others, and each node's wire transport, election and resolver.

import { SimClock, SimNetwork, createSimHal, type LinkConditions, type SimHal } from '../../src/hal'
import { createKeyPair, identityFromKeyPair, type Identity } from '../../src/identity'
import { silentLogger, type Logger } from '../../src/log'
import {
  createElection, type Election, MemoryContentIndex, createResolver, StaticPeerDirectory, createWireTransport, type Resolver, type WireTransport,
  type ElectionTiming, type PeerInfo, type ProviderView, type ResolveTiming
} from '../../src/protocol'

export const UDP_PORT = 8787
export const HTTP_PORT = 8080

export interface LanNode {
  index: number
  hal: SimHal
  identity: Identity
  peers: StaticPeerDirectory
  wire: WireTransport
  election: Election
  resolver: Resolver
  content: MemoryContentIndex
  info: PeerInfo
  alive: boolean
}

export interface LanOptions {
  nodes: number
  seed: number
  conditions?: Partial<LinkConditions>
  /** Nodes (by index) with a WAN interface of their own. */
  wan?: number[]
  /** Nodes that may not be provider. */
  nonCandidates?: number[]
  resolveTiming?: Partial<ResolveTiming>
  electionTiming?: Partial<ElectionTiming>
  /** Start election services (default true). */
  election?: boolean
  /** What node i's resolver knows of the provider (default: its election). */
  provider?: (i: number) => ProviderView | undefined
  log?: Logger
}

export interface Lan {
  clock: SimClock
  network: SimNetwork
  nodes: LanNode[]
  start (): Promise<void>
  stop (): Promise<void>
  /** Kill a node without warning (no byebye, sockets gone). */
  kill (i: number): void
  alive (): LanNode[]
  /** Advance simulated time while a promise settles; fails after maxMs of simulated time. */
  run<T> (p: Promise<T>, maxMs?: number, stepMs?: number): Promise<T>
  /** The provider each live node believes in. */
  providers (): Array<string | null>
}

const addressOf = (i: number): string => `10.0.${Math.floor((i + 1) / 250)}.${((i + 1) % 250) + 1}`

export function buildLan (o: LanOptions): Lan {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed: o.seed, conditions: { latencyMs: 1, jitterMs: 1, ...o.conditions } })
  const log = o.log ?? silentLogger
  const nodes: LanNode[] = []
  for (let i = 0; i < o.nodes; i++) {
    const ifaces = [{ nic: 'eth0', address: addressOf(i), prefixLength: 16 }]
    if (o.wan?.includes(i) === true) ifaces.push({ nic: 'wan0', address: `203.0.113.${i + 1}`, prefixLength: 24 })
    const host = network.addHost(`n${i}`, ifaces)
    const hal = createSimHal({ seed: o.seed * 1000 + i, host, dataDir: `/sim/n${i}` })
    const identity = identityFromKeyPair(createKeyPair(hal.random))
    const peers = new StaticPeerDirectory()
    const wire = createWireTransport({ hal, identity, peers, log, port: UDP_PORT })
    const election = createElection({ hal, wire, peers, log, httpPort: () => HTTP_PORT, candidate: o.nonCandidates?.includes(i) !== true, wanMbps: 0, timing: o.electionTiming })
    const content = new MemoryContentIndex()
    const resolver = createResolver({ hal, wire, index: content, provider: o.provider?.(i) ?? election, httpPort: () => HTTP_PORT, log, timing: o.resolveTiming })
    const info: PeerInfo = {
      nodeId: identity.nodeId, publicKey: identity.publicKey, address: addressOf(i), httpPort: HTTP_PORT, udpPort: UDP_PORT,
      capabilities: ['resolve', 'provider'], name: `n${i}`, version: 'test', lastSeenMs: 0, expiresMs: Number.MAX_SAFE_INTEGER
    }
    nodes.push({ index: i, hal, identity, peers, wire, election, resolver, content, info, alive: true })
  }
  for (const n of nodes) for (const m of nodes) if (m !== n) n.peers.set(m.info)

  const lan: Lan = {
    clock,
    network,
    nodes,
    async start () {
      for (const n of nodes) await n.wire.start()
      for (const n of nodes) {
        if (o.election !== false) await n.election.start()
        await n.resolver.start()
      }
    },
    async stop () {
      for (const n of nodes) {
        await n.resolver.stop()
        await n.election.stop()
        await n.wire.stop()
      }
    },
    kill (i) {
      const n = nodes[i]!
      n.alive = false
      n.hal.net.kill()
      void n.resolver.stop()
      void n.election.stop()
      void n.wire.stop()
    },
    alive: () => nodes.filter((n) => n.alive),
    async run<T> (p: Promise<T>, maxMs = 10_000, stepMs = 1): Promise<T> {
      let done = false
      let value: T | undefined
      let error: unknown
      let failed = false
      p.then((v) => { done = true; value = v }, (e: unknown) => { done = true; failed = true; error = e })
      const end = clock.nowMs() + maxMs
      while (!done && clock.nowMs() < end) await clock.advance(stepMs)
      if (!done) throw new Error(`not settled within ${maxMs} ms of simulated time`)
      if (failed) throw error
      return value as T
    },
    providers: () => nodes.filter((n) => n.alive).map((n) => n.election.current()?.nodeId ?? null)
  }
  return lan
}

/** The provider every live node names, when they agree and it says so itself; else null. */
export function agreedProvider (lan: Lan): string | null {
  const ids = new Set(lan.providers())
  const only = [...ids][0]
  if (ids.size !== 1 || only === null || only === undefined) return null
  const self = lan.alive().filter((n) => n.election.role === 'provider')
  return self.length === 1 && self[0]!.identity.nodeId === only ? only : null
}

/** Advance simulated time until agreement (on another provider than `not`); the ms it took. */
export async function untilAgreed (lan: Lan, maxMs: number, not?: string, stepMs = 10): Promise<{ provider: string, ms: number }> {
  const start = lan.clock.nowMs()
  for (;;) {
    const p = agreedProvider(lan)
    if (p !== null && p !== not) return { provider: p, ms: lan.clock.nowMs() - start }
    if (lan.clock.nowMs() - start > maxMs) throw new Error(`no agreement within ${maxMs} ms`)
    await lan.clock.advance(stepMs)
  }
}
