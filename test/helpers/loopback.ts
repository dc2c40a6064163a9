// Canopy nodes on real UDP sockets in one process, on loopback (127.0.0.x or
// 127.0.0.1 with distinct ports), each with its own StaticPeerDirectory: the
// real-socket counterpart of helpers/lan.ts for tests and the benchmark.

import { SimFiles, SimNics, createCryptoRandom, createLinuxNet, createRealClock, type Hal } from '../../src/hal'
import { createKeyPair, identityFromKeyPair, type Identity } from '../../src/identity'
import { silentLogger } from '../../src/log'
import {
  createElection, type Election, MemoryContentIndex, createResolver, StaticPeerDirectory, createWireTransport, type Resolver, type WireTransport,
  type ElectionTiming, type PeerInfo, type ProviderView, type ResolveTiming
} from '../../src/protocol'

export interface LoopNode {
  hal: Hal
  identity: Identity
  peers: StaticPeerDirectory
  wire: WireTransport
  election: Election | null
  resolver: Resolver
  content: MemoryContentIndex
  info: PeerInfo
  alive: boolean
}

export interface LoopOptions {
  nodes: number
  /** Bind 127.0.0.(i+1) instead of 127.0.0.1 (Linux routes all of 127/8 to lo). */
  distinctAddresses?: boolean
  election?: boolean
  resolveTiming?: Partial<ResolveTiming>
  electionTiming?: Partial<ElectionTiming>
}

const none: ProviderView = { current: () => null }

export async function buildLoopbackLan (o: LoopOptions): Promise<{ nodes: LoopNode[], stop (): Promise<void>, kill (n: LoopNode): Promise<void> }> {
  const net = createLinuxNet()
  const clock = createRealClock()
  const nodes: LoopNode[] = []
  for (let i = 0; i < o.nodes; i++) {
    const address = o.distinctAddresses === true ? `127.0.0.${i + 1}` : '127.0.0.1'
    const random = createCryptoRandom()
    const hal: Hal = {
      clock, random, net, files: new SimFiles(), nics: new SimNics([]), dataDir: '/mem',
      openFlash: () => Promise.reject(new Error('no flash in loopback nodes')), close: async () => {}
    }
    const identity = identityFromKeyPair(createKeyPair(random))
    const peers = new StaticPeerDirectory()
    const wire = createWireTransport({ hal, identity, peers, log: silentLogger, port: 0, bindAddress: address })
    const election = o.election === true ? createElection({ hal, wire, peers, log: silentLogger, httpPort: () => 80, candidate: true, wanMbps: 0, timing: o.electionTiming }) : null
    const content = new MemoryContentIndex()
    const resolver = createResolver({ hal, wire, index: content, provider: election ?? none, httpPort: () => 80, log: silentLogger, timing: o.resolveTiming })
    await wire.start()
    const info: PeerInfo = { nodeId: identity.nodeId, publicKey: identity.publicKey, address, httpPort: 80, udpPort: wire.port, capabilities: [], name: `l${i}`, version: 'test', lastSeenMs: 0, expiresMs: Infinity }
    nodes.push({ hal, identity, peers, wire, election, resolver, content, info, alive: true })
  }
  for (const n of nodes) for (const m of nodes) if (m !== n) n.peers.set(m.info)
  for (const n of nodes) {
    await n.resolver.start()
    await n.election?.start()
  }
  const stopOne = async (n: LoopNode): Promise<void> => {
    if (!n.alive) return
    n.alive = false
    await n.resolver.stop()
    await n.election?.stop()
    await n.wire.stop()
  }
  // Real sockets and timers are unref'd (an agent lives by its HTTP server): hold the process open meanwhile.
  const keepAlive = setInterval(() => {}, 1_000)
  return {
    nodes,
    stop: async () => {
      for (const n of nodes) await stopOne(n)
      clearInterval(keepAlive)
    },
    kill: stopOne
  }
}
