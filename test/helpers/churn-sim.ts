// The 1 000-node stream simulation: the real Streams (tree, repair,
// verification) on every node, the message-level VirtualNet underneath,
// heterogeneous upload budgets, 1 % loss (as TCP retransmission delay),
// interior nodes killed without warning at a set rate and replaced by fresh
// joiners. Reports continuity, depth, source upload, repair times and
// control overhead. Used by test/stream/churn-sim.test.ts and bench/stream.ts.

import { createKeyPair, identityFromKeyPair, type Identity } from '../../src/identity'
import { SimClock, createSeededRandom, type Random } from '../../src/hal'
import { silentLogger } from '../../src/log'
import { CHUNK_FLAGS, Streams, deriveSettings, realCrypto, type Session, type StreamCrypto } from '../../src/stream'
import { VirtualNet, type VNode } from './virtual-net'

export interface ChurnOptions {
  seed: number
  nodes: number
  bitrateBitsPerSec: number
  chunkMs: number
  /** Joins spread over the first joinSpreadMs; churn starts at warmupMs and lasts churnMs. */
  joinSpreadMs: number
  warmupMs: number
  churnMs: number
  /** Share of interior nodes killed per minute. */
  killPerMinute: number
  rejoinAfterMs: number
  loss: number
  latencyMs: number
  jitterMs: number
  deadAfterMs: number
  playoutDelayMs: number
  /** Upload budgets as multiples of the bitrate, with their shares. */
  budgets: Array<[multiple: number, share: number]>
  sourceMultiple: number
}

export const DEFAULT_CHURN: ChurnOptions = {
  seed: 1,
  nodes: 1000,
  bitrateBitsPerSec: 8_000_000,
  chunkMs: 100,
  joinSpreadMs: 20_000,
  warmupMs: 30_000,
  churnMs: 120_000,
  killPerMinute: 0.10,
  rejoinAfterMs: 5_000,
  loss: 0.01,
  latencyMs: 5,
  jitterMs: 2,
  deadAfterMs: 400,
  playoutDelayMs: 3_000,
  budgets: [[0, 0.3], [2, 0.3], [4, 0.25], [8, 0.15]],
  sourceMultiple: 4
}

export interface ChurnResult {
  members: number
  /** Node-seconds measured from each node's first second to its death or the end, flash crowd included. */
  nodeSeconds: number
  badNodeSeconds: number
  continuity: number
  /** The same, counting only seconds of the churn phase (after warmupMs). */
  churnNodeSeconds: number
  churnBadNodeSeconds: number
  churnContinuity: number
  depthMean: number
  depthP95: number
  depthMax: number
  sourceUploadBytesPerSec: number
  bitrateBytesPerSec: number
  killed: number
  reattaches: number
  attachMs: number[]
  fillMs: number[]
  lostBySurvivors: number
  /** Attached nodes whose chain of parents does not reach the source (a loop or a dangling parent). */
  orphanedChains: number
  /** Chunks published in the churn phase that a node alive at the end never received (after it joined). */
  churnMissingForSurvivors: number
  controlOverhead: number
  wallMs: number
  simMs: number
}

/** hash and verify once per frame object: every node gets the same Buffer in this simulation. */
function memoCrypto (): StreamCrypto {
  const hashes = new WeakMap<Buffer, Buffer>()
  const verdicts = new WeakMap<Buffer, boolean>()
  return {
    hashChunk (frame) {
      let h = hashes.get(frame)
      if (h === undefined) { h = realCrypto.hashChunk(frame); hashes.set(frame, h) }
      return h
    },
    verify (key, domain, frame, signedEnd) {
      let v = verdicts.get(frame)
      if (v === undefined) { v = realCrypto.verify(key, domain, frame, signedEnd); verdicts.set(frame, v) }
      return v
    },
    sign: realCrypto.sign
  }
}

interface Member { id: string, vnode: VNode, streams: Streams, joinMs: number, deathMs: number, arrivals: Float64Array, session: Session | null }

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

export { percentile }

export async function runChurn (options: Partial<ChurnOptions> = {}): Promise<ChurnResult> {
  const o = { ...DEFAULT_CHURN, ...options }
  const wall0 = performance.now()
  const clock = new SimClock()
  const random = createSeededRandom(o.seed)
  const bitrate = o.bitrateBitsPerSec / 8
  const chunkBytes = Math.round(bitrate * o.chunkMs / 1000)
  const endMs = o.warmupMs + o.churnMs
  const totalChunks = Math.ceil(endMs / o.chunkMs) + 10
  const net = new VirtualNet(clock, {
    latencyMs: o.latencyMs, jitterMs: o.jitterMs, loss: o.loss, rtoMs: 200, connectTimeoutMs: 2_000, linkDeadMs: 15_000, queueBytesMax: 2 * 1024 * 1024
  }, chunkBytes, o.seed + 1)
  const crypto = memoCrypto()
  // The ring holds ~4 s of chunks, as 4 MiB does at 8 Mbit/s on a device.
  const frameBytes = 5 + 22 + 188
  const ringBytes = Math.ceil(4_000 / o.chunkMs) * frameBytes

  const pickBudget = (r: Random): number => {
    let x = r.float()
    for (const [m, share] of o.budgets) { if (x < share) return m; x -= share }
    return o.budgets[o.budgets.length - 1]![0]
  }
  const makeStreams = (identity: Identity, multiple: number, vnode: VNode, seed: number): Streams => {
    const settings = { ...deriveSettings({ uploadBytesPerSec: multiple * bitrate, ringBytes, deadAfterMs: o.deadAfterMs, playoutDelayMs: o.playoutDelayMs, lingerMs: 10_000 }) }
    const started = clock.nowMs()
    const id = identity.nodeId
    const s = new Streams({ selfId: id, clock, random: createSeededRandom(seed), transport: vnode, settings, crypto, uptimeS: () => Math.floor((clock.nowMs() - started) / 1000), log: silentLogger }, identity)
    s.start()
    return s
  }
  // Node ids derive from keys, as on a device (the root id is checked against the source's key).
  const newIdentity = (): Identity => identityFromKeyPair(createKeyPair(random))
  // Uplink: the budget plus headroom; nodes that cannot relay still send control.
  const uplinkFor = (multiple: number): number => Math.max(0.25, multiple * 1.25) * bitrate

  // The source.
  const sourceIdentity = newIdentity()
  const sourceNode = net.add(sourceIdentity.nodeId, uplinkFor(o.sourceMultiple))
  const sourceStreams = makeStreams(sourceIdentity, o.sourceMultiple, sourceNode, o.seed * 7919)
  const source = sourceStreams.publish('live')
  const pubMs = new Float64Array(totalChunks).fill(-1)
  const packet = Buffer.alloc(188, 0xff)
  packet[0] = 0x47
  let published = 0
  const publisher = clock.setInterval(() => {
    if (clock.nowMs() > endMs) return
    const key = published % Math.round(1000 / o.chunkMs) === 0
    const seq = source.publish(packet, key ? CHUNK_FLAGS.key | CHUNK_FLAGS.psi : 0, chunkBytes)
    pubMs[seq] = clock.nowMs()
    published++
  }, o.chunkMs)

  const members: Member[] = []
  const byId = new Map<string, Member>()
  const addMember = (joinMs: number): void => {
    const identity = newIdentity()
    const id = identity.nodeId
    const multiple = pickBudget(random)
    const vnode = net.add(id, uplinkFor(multiple))
    const m: Member = { id, vnode, streams: null as unknown as Streams, joinMs, deathMs: Infinity, arrivals: new Float64Array(totalChunks).fill(-1), session: null }
    members.push(m)
    byId.set(id, m)
    clock.setTimeout(() => {
      if (!vnode.alive) return
      m.streams = makeStreams(identity, multiple, vnode, random.int(2 ** 30))
      m.streams.sessionListeners.push((s) => {
        m.session = s
        s.listeners.add({ chunk: (seq) => { if (m.arrivals[seq] === -1) m.arrivals[seq] = clock.nowMs() }, end: () => {} })
      })
      m.streams.subscribe('live', 600_000).catch(() => { /* a node killed while joining */ })
    }, Math.max(0, joinMs - clock.nowMs()))
  }
  for (let i = 0; i < o.nodes; i++) addMember(random.float() * o.joinSpreadMs)

  // Churn: kill one interior node at a time, at the rate asked, and bring a fresh node in its place later.
  const killedAt = new Map<string, number>()
  let nextKillMs = o.warmupMs
  const churn = clock.setInterval(() => {
    const now = clock.nowMs()
    if (now < nextKillMs || now >= endMs) return
    const interior = members.filter((m) => m.deathMs === Infinity && m.session !== null && m.session.tree.children.size > 0)
    if (interior.length === 0) return
    const victim = interior[random.int(interior.length)]!
    victim.deathMs = now
    killedAt.set(victim.id, now)
    victim.vnode.kill()
    victim.streams.stop()
    addMember(now + o.rejoinAfterMs)
    nextKillMs = now + 60_000 / (o.killPerMinute * interior.length)
  }, 50)

  // Run: synchronous slices, yielding between them so promise-based joins progress.
  const sliceMs = 5
  while (clock.nowMs() < endMs + o.playoutDelayMs + 1_000) {
    clock.advanceSync(sliceMs)
    await new Promise((r) => setImmediate(r))
  }
  publisher.cancel()
  churn.cancel()

  // Continuity: a node-second is good when every chunk published in it reached the node by its playout deadline.
  const secondOf = (seq: number): number => Math.floor(pubMs[seq]! / 1000)
  const seqsBySecond = new Map<number, number[]>()
  for (let s = 0; s < totalChunks; s++) if (pubMs[s]! >= 0) { const k = secondOf(s); if (!seqsBySecond.has(k)) seqsBySecond.set(k, []); seqsBySecond.get(k)!.push(s) }
  let nodeSeconds = 0
  let bad = 0
  let churnMissing = 0
  let churnSeconds = 0
  let churnBad = 0
  let lostBySurvivors = 0
  for (const m of members) {
    let first = -1
    for (let s = 0; s < totalChunks; s++) if (m.arrivals[s]! >= 0) { first = s; break }
    if (first === -1) continue
    const from = secondOf(first) + 1
    const lastUseful = Math.min(m.deathMs, endMs) - o.playoutDelayMs
    for (const [sec, seqs] of seqsBySecond) {
      if (sec < from || (sec + 1) * 1000 > lastUseful) continue
      const isBad = seqs.some((s) => m.arrivals[s]! < 0 || m.arrivals[s]! > pubMs[s]! + o.playoutDelayMs)
      nodeSeconds++
      if (isBad) bad++
      if (sec * 1000 >= o.warmupMs) { churnSeconds++; if (isBad) churnBad++ }
    }
    if (m.deathMs === Infinity && m.session !== null) {
      lostBySurvivors += m.session.counters.lost
      for (let s = Math.max(first, 0); s < totalChunks; s++) {
        if (pubMs[s]! < o.warmupMs || pubMs[s]! > endMs - o.playoutDelayMs) continue
        if (m.arrivals[s]! < 0) churnMissing++
      }
    }
  }

  const alive = members.filter((m) => m.deathMs === Infinity && m.session !== null && m.session.tree.attached)
  // Loop freedom: from every attached node, parents lead to the source within the depth bound.
  let orphanedChains = 0
  for (const m of alive) {
    let at: Member | undefined = m
    let steps = 0
    while (at !== undefined && at.session !== null && at.session.tree.parent !== null && steps <= 64) {
      const pid: string = at.session.tree.parent.nodeId
      if (pid === sourceIdentity.nodeId) break
      at = byId.get(pid)
      steps++
      if (at === undefined || at.deathMs !== Infinity) break
    }
    if (at === undefined || at.deathMs !== Infinity || steps > 64 || at.session?.tree.parent?.nodeId !== sourceIdentity.nodeId) orphanedChains++
  }
  const depths = alive.map((m) => m.session!.tree.depth)
  const attachMs: number[] = []
  const fillMs: number[] = []
  for (const m of members) {
    if (m.session === null) continue
    for (const ev of m.session.tree.events) {
      const k = killedAt.get(ev.from)
      if (k === undefined || (m.deathMs !== Infinity && m.deathMs < (ev.filledMs ?? Infinity))) continue
      if (ev.attachedMs !== null) attachMs.push(ev.attachedMs - k)
      if (ev.filledMs !== null) fillMs.push(ev.filledMs - k)
    }
  }
  const result: ChurnResult = {
    members: members.length,
    nodeSeconds,
    badNodeSeconds: bad,
    continuity: nodeSeconds === 0 ? 0 : (nodeSeconds - bad) / nodeSeconds,
    churnNodeSeconds: churnSeconds,
    churnBadNodeSeconds: churnBad,
    churnContinuity: churnSeconds === 0 ? 0 : (churnSeconds - churnBad) / churnSeconds,
    depthMean: depths.reduce((a, b) => a + b, 0) / Math.max(1, depths.length),
    depthP95: percentile(depths, 95),
    depthMax: Math.max(...depths),
    sourceUploadBytesPerSec: (sourceNode.sentChunkBytes + sourceNode.sentControlBytes) / (endMs / 1000),
    bitrateBytesPerSec: bitrate,
    killed: killedAt.size,
    reattaches: attachMs.length,
    attachMs,
    fillMs,
    lostBySurvivors,
    churnMissingForSurvivors: churnMissing,
    orphanedChains,
    controlOverhead: net.stats.controlBytes / Math.max(1, net.stats.chunkBytes),
    wallMs: performance.now() - wall0,
    simMs: clock.nowMs()
  }
  sourceStreams.stop()
  for (const m of members) if (m.deathMs === Infinity && m.streams !== null) m.streams.stop()
  return result
}
