// Tree policies on the message-level network: a slow child is moved lower
// and never stalls its siblings; a stronger joiner displaces a leaf that
// cannot relay; a bitrate above a parent's budget sheds a child.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimClock, createSeededRandom } from '../../src/hal'
import { createKeyPair, identityFromKeyPair } from '../../src/identity'
import { silentLogger } from '../../src/log'
import { CHUNK_FLAGS, Streams, deriveSettings, realCrypto, type Session } from '../../src/stream'
import { VirtualNet, type VNode } from '../helpers/virtual-net'

const BITRATE = 250_000 // bytes/s (2 Mbit/s)
const CHUNK_MS = 50

interface N { id: string, vnode: VNode, streams: Streams, arrivals: Map<number, number> }

function world (seed: number) {
  const clock = new SimClock()
  const net = new VirtualNet(clock, { latencyMs: 2, jitterMs: 0, loss: 0, rtoMs: 200, connectTimeoutMs: 2000, linkDeadMs: 15000, queueBytesMax: 2 * 1024 * 1024 }, BITRATE * CHUNK_MS / 1000, seed)
  const random = createSeededRandom(seed)
  const add = (multiple: number): N => {
    const identity = identityFromKeyPair(createKeyPair(random))
    const vnode = net.add(identity.nodeId, Math.max(0.25, multiple * 1.25) * BITRATE)
    const settings = deriveSettings({ uploadBytesPerSec: multiple * BITRATE, ringBytes: 80 * 215, deadAfterMs: 400, playoutDelayMs: 3000, lingerMs: 10_000 })
    const streams = new Streams({ selfId: identity.nodeId, clock, random: createSeededRandom(random.int(1e9)), transport: vnode, settings, crypto: realCrypto, uptimeS: () => Math.floor(clock.nowMs() / 1000), log: silentLogger }, identity)
    streams.start()
    const n: N = { id: identity.nodeId, vnode, streams, arrivals: new Map() }
    streams.sessionListeners.push((s) => { s.listeners.add({ chunk: (seq) => { if (!n.arrivals.has(seq)) n.arrivals.set(seq, clock.nowMs()) }, end () {} }) })
    return n
  }
  const run = async (ms: number): Promise<void> => { for (let t = 0; t < ms; t += 5) { clock.advanceSync(5); await new Promise((r) => setImmediate(r)) } }
  return { clock, net, add, run }
}

function publish (w: ReturnType<typeof world>, s: Session): Map<number, number> {
  const published = new Map<number, number>()
  const p = Buffer.alloc(188, 1); p[0] = 0x47
  let n = 0
  w.clock.setInterval(() => { const seq = s.publish(p, n++ % 20 === 0 ? CHUNK_FLAGS.key : 0, BITRATE * CHUNK_MS / 1000); published.set(seq, w.clock.nowMs()) }, CHUNK_MS)
  return published
}

test('a child that cannot keep up is moved off; its siblings get every chunk without delay', async () => {
  const w = world(41)
  const src = w.add(3)
  const source = src.streams.publish('s')
  const published = publish(w, source)
  await w.run(500)
  const a = w.add(2); const b = w.add(2); const slow = w.add(0)
  slow.vnode.downlinkBytesPerSec = BITRATE * 0.5
  for (const n of [a, b, slow]) { n.streams.subscribe('s', 10_000).catch(() => {}); await w.run(300) }
  await w.run(8000)
  const tree = source.tree
  assert.ok(tree.counters.moves >= 1, 'the slow child was moved')
  assert.not.ok(tree.children.has(slow.id), 'and is no longer a child of the source')
  for (const n of [a, b]) {
    // From a second after it joined (the join itself starts a second back, at a keyframe).
    const first = Math.min(...n.arrivals.keys()) + 1000 / CHUNK_MS
    let worst = 0
    for (const [seq, at] of published) {
      if (seq < first || seq > source.newestSeq - 5) continue
      assert.ok(n.arrivals.has(seq), `sibling got chunk ${seq}`)
      worst = Math.max(worst, n.arrivals.get(seq)! - at)
    }
    assert.ok(worst < 500, `sibling delay stays small (worst ${worst} ms)`)
  }
})

test('a joiner that can relay displaces a leaf that cannot; the leaf lands one level lower and loses nothing', async () => {
  const w = world(42)
  const src = w.add(2)
  const source = src.streams.publish('s')
  publish(w, source)
  await w.run(500)
  const leaves = [w.add(0), w.add(0)]
  for (const n of leaves) { n.streams.subscribe('s', 10_000).catch(() => {}); await w.run(300) }
  await w.run(6000)
  assert.is(source.tree.children.size, 2)
  const strong = w.add(4)
  strong.streams.subscribe('s', 10_000).catch(() => {})
  await w.run(3000)
  assert.ok(source.tree.children.has(strong.id), 'the relay took a slot at the source')
  assert.is(source.tree.counters.displaced, 1)
  const moved = leaves.find((l) => !source.tree.children.has(l.id))!
  const ms = moved.streams.get('s')!
  assert.is(ms.tree.parent?.nodeId, strong.id, 'the displaced leaf is now under the relay')
  assert.is(ms.tree.depth, 2)
  assert.is(ms.counters.lost, 0)
  const first = Math.min(...moved.arrivals.keys())
  for (let s = first; s <= ms.newestSeq; s++) assert.ok(moved.arrivals.has(s), `chunk ${s}`)
})

test('a node hanging deep climbs to a shallower slot that opened, keeping its parent until the move is done: no chunk lost', async () => {
  const w = world(43)
  const src = w.add(2)
  const source = src.streams.publish('s')
  publish(w, source)
  await w.run(500)
  const x = w.add(0)
  x.streams.subscribe('s', 10_000).catch(() => {})
  await w.run(500)
  const chain = [w.add(1), w.add(1), w.add(1), w.add(0)]
  for (const n of chain) { n.streams.subscribe('s', 10_000).catch(() => {}); await w.run(500) }
  await w.run(2000)
  const depthOf = (n: N): number => n.streams.get('s')!.tree.depth
  assert.equal(chain.map(depthOf), [1, 2, 3, 4], 'a chain under the source')
  x.streams.stop() // leaves politely: the source has a free slot at the top
  await w.run(15_000)
  const climbs = chain.reduce((k, n) => k + n.streams.get('s')!.tree.counters.climbs, 0)
  assert.ok(climbs >= 1, 'someone climbed')
  assert.ok(Math.max(...chain.map(depthOf)) <= 3, `depths now ${chain.map(depthOf).join(',')}`)
  for (const n of chain) {
    const first = Math.min(...n.arrivals.keys())
    const last = n.streams.get('s')!.newestSeq
    for (let q = first; q <= last; q++) assert.ok(n.arrivals.has(q), `chunk ${q}`)
    assert.is(n.streams.get('s')!.counters.lost, 0)
  }
})

test.run()
