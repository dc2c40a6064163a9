// Stream nodes on the simulated network with real peer links: each node a
// SimHost, a LinkHost, a LinkTransport and a Streams, sharing one SimClock.
// What runs is the agent's own code; only the sockets are simulated.

import { SimClock, SimNetwork, createSeededRandom, type SimHost } from '../../src/hal'
import { createKeyPair, identityFromKeyPair, type Identity } from '../../src/identity'
import { silentLogger } from '../../src/log'
import { StaticPeerDirectory } from '../../src/protocol'
import { createFramePool, createLinkHost, type FramePool, type LinkHost } from '../../src/protocol/link'
import { STREAM_FRAME_SLOT_BYTES } from '../../src/limits'
import { createLinkTransport, createStreams, deriveSettings, realCrypto, type Session, type Streams, type StreamSettings } from '../../src/stream'

export interface SimNode {
  name: string
  host: SimHost
  identity: Identity
  links: LinkHost
  streams: Streams
  directory: StaticPeerDirectory
  pool: FramePool
}

export interface SimWorld {
  clock: SimClock
  network: SimNetwork
  nodes: SimNode[]
  settings: StreamSettings
}

export const LINK_PORT = 8788

export async function buildWorld (options: { seed: number, count: number, uploadBytesPerSec: (i: number) => number, latencyMs?: number, uplinkBytesPerSec?: number, deadAfterMs?: number }): Promise<SimWorld> {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed: options.seed, conditions: { latencyMs: options.latencyMs ?? 1 } })
  const nodes: SimNode[] = []
  const base = { ringBytes: 4 * 1024 * 1024, deadAfterMs: options.deadAfterMs ?? 400, playoutDelayMs: 3000, lingerMs: 10_000 }
  for (let i = 0; i < options.count; i++) {
    const host = network.addHost(`n${i}`, [{ nic: 'eth0', address: `10.0.${i >> 8}.${(i & 0xff) + 1}`, prefixLength: 16 }], { uplinkBytesPerSec: options.uplinkBytesPerSec ?? 0 })
    const random = createSeededRandom(options.seed * 1000 + i)
    const identity = identityFromKeyPair(createKeyPair(random))
    const pool = createFramePool(STREAM_FRAME_SLOT_BYTES, 1024)
    const links = createLinkHost({ net: host, clock, random, identity, log: silentLogger, port: LINK_PORT, channels: ['stream'], pool })
    await links.start()
    const directory = new StaticPeerDirectory()
    const transport = createLinkTransport(links, directory, silentLogger)
    const settings = deriveSettings({ ...base, uploadBytesPerSec: options.uploadBytesPerSec(i) })
    const started = clock.nowMs()
    const streams = createStreams({
      selfId: identity.nodeId, clock, random, transport, settings, crypto: realCrypto,
      uptimeS: () => Math.floor((clock.nowMs() - started) / 1000), log: silentLogger, pool
    }, identity)
    streams.start()
    nodes.push({ name: `n${i}`, host, identity, links, streams, directory, pool })
  }
  for (const n of nodes) {
    for (const m of nodes) {
      if (m === n) continue
      n.directory.set({ nodeId: m.identity.nodeId, publicKey: m.identity.publicKey, address: m.host.address, httpPort: 0, udpPort: 0, linkPort: LINK_PORT, capabilities: ['stream'], name: m.name, version: '', lastSeenMs: 0, expiresMs: Infinity })
    }
  }
  return { clock, network, nodes, settings: deriveSettings({ ...base, uploadBytesPerSec: 0 }) }
}

/** Stop every node, let in-flight writes finish, and return the pooled frames still held anywhere (0 when nothing leaks). */
export async function stopWorld (w: SimWorld): Promise<number> {
  for (const n of w.nodes) { n.streams.stop(); await n.links.stop() }
  await w.clock.advance(2000)
  return w.nodes.reduce((sum, n) => sum + n.pool.counters.inUse, 0)
}

/** Records, per node, when each seq arrived (simulated ms). */
export function record (session: Session, clock: SimClock): Map<number, number> {
  const got = new Map<number, number>()
  session.listeners.add({ chunk: (seq) => { if (!got.has(seq)) got.set(seq, clock.nowMs()) }, end: () => {} })
  return got
}

/** Settle a promise while advancing simulated time in steps, with a deadline in simulated ms. */
export async function settle<T> (clock: SimClock, p: Promise<T>, ms: number, step = 10): Promise<T> {
  let done = false
  let value: T | undefined
  let error: unknown
  p.then((v) => { done = true; value = v }, (e) => { done = true; error = e })
  for (let t = 0; t < ms && !done; t += step) await clock.advance(step)
  if (!done) throw new Error(`not settled within ${ms} simulated ms`)
  if (error !== undefined) throw error
  return value as T
}
