// The stream tree on the simulated network with the agent's real links:
// joins, depth, redirects, a relay killed without warning, survivors lose
// nothing.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TsChunker, wire, type Session } from '../../src/stream'
import { TsGen } from '../helpers/ts'
import { buildWorld, record, settle, stopWorld, type SimWorld } from '../helpers/stream-nodes'
import { testSeed } from '../helpers/seed'

function pump (w: SimWorld, source: Session, packetsPerFrame: number): { stop (): void, gen: TsGen } {
  const gen = new TsGen(25, () => w.clock.nowMs())
  const chunker = new TsChunker((packets, flags) => { source.publish(packets, flags) })
  const t = w.clock.setInterval(() => { chunker.push(gen.frame(packetsPerFrame)) }, 40)
  return { stop: () => { t.cancel(); chunker.end() }, gen }
}

test('ten nodes form a tree within their budgets; a killed relay costs its subtree no chunk', async () => {
  const seed = testSeed('stream tree on links', 5)
  const w = await buildWorld({ seed, count: 10, uploadBytesPerSec: () => 300_000 })
  const [src, ...members] = w.nodes
  const source = src!.streams.publish('live')
  const p = pump(w, source, 26)
  await w.clock.advance(500)
  const got = new Map<string, Map<number, number>>()
  for (const m of members) {
    const s = await settle(w.clock, m.streams.subscribe('live', 5000), 6000)
    got.set(m.name, record(s, w.clock))
    await w.clock.advance(300)
  }
  await w.clock.advance(3000)
  const depth = (n: typeof members[number]) => n.streams.get('live')!.tree.depth
  for (const m of members) assert.ok(depth(m) >= 1, `${m.name} attached`)
  assert.ok(Math.max(...members.map(depth)) >= 2, 'depth at least 2 with two children per node')
  for (const n of w.nodes) {
    const s = n.streams.get('live')!
    assert.ok(s.tree.children.size <= s.tree.capacity(), `${n.name} within its capacity (${s.tree.children.size}/${s.tree.capacity()})`)
  }
  // Kill a relay that has children.
  const relay = members.find((m) => depth(m) === 1 && m.streams.get('live')!.tree.children.size > 0)!
  assert.ok(relay !== undefined, 'a relay at depth 1')
  const orphans = [...relay.streams.get('live')!.tree.children.keys()]
  relay.host.kill()
  relay.streams.stop()
  const killedAt = w.clock.nowMs()
  await w.clock.advance(5000)
  p.stop()
  await w.clock.advance(1000)
  const newest = source.newestSeq
  for (const m of members) {
    if (m === relay) continue
    const seqs = got.get(m.name)!
    const first = Math.min(...seqs.keys())
    const missing: number[] = []
    for (let s = first; s <= newest; s++) if (!seqs.has(s)) missing.push(s)
    assert.equal(missing, [], `${m.name} (depth ${depth(m)}) misses nothing`)
    assert.is(m.streams.get('live')!.counters.polluted, 0)
  }
  for (const id of orphans) {
    const o = members.find((m) => m.identity.nodeId === id)!
    const ev = o.streams.get('live')!.tree.events.at(-1)!
    assert.ok(ev !== undefined && ev.attachedMs !== null, `${o.name} re-attached`)
    assert.ok(ev.attachedMs! - killedAt < 1000, `${o.name} re-attached ${ev.attachedMs! - killedAt} ms after the kill`)
  }
  assert.is(await stopWorld(w), 0, 'every pooled frame went back to its pool')
})

test('a relay that alters chunks is detected by its children, left, and never reaches a player', async () => {
  const seed = testSeed('stream pollution', 6)
  const w = await buildWorld({ seed, count: 6, uploadBytesPerSec: () => 300_000 })
  const [src, ...members] = w.nodes
  const source = src!.streams.publish('live')
  const truth = new Map<number, string>()
  source.listeners.add({ chunk: (seq) => { truth.set(seq, source.ring.get(seq)!.toString('hex')) }, end: () => {} })
  const p = pump(w, source, 26)
  await w.clock.advance(500)
  for (const m of members) { await settle(w.clock, m.streams.subscribe('live', 5000), 6000); await w.clock.advance(300) }
  await w.clock.advance(2000)
  // A child of the source that relays for others: make it lie.
  const relay = members.find((m) => m.streams.get('live')!.tree.depth === 1 && m.streams.get('live')!.tree.children.size > 0)!
  const victims = [...relay.streams.get('live')!.tree.children.keys()]
  assert.ok(victims.length > 0, 'the relay has children')
  const get = relay.links.get.bind(relay.links)
  relay.links.get = (id: string) => {
    const l = get(id)
    if (l !== undefined && !(l as unknown as { lying?: true }).lying) {
      const send = l.sendFrame.bind(l)
      l.sendFrame = (frame, o) => {
        if (frame[5] !== wire.MSG.chunk) return send(frame, o)
        const bad = Buffer.from(frame)
        bad[wire.CHUNK_PACKETS_OFFSET + 100] ^= 0xff
        return send(bad, o)
      }
      ;(l as unknown as { lying?: true }).lying = true
    }
    return l
  }
  const seen = new Map<string, Map<number, string>>()
  for (const m of members) {
    const s = m.streams.get('live')!
    const mine = new Map<number, string>()
    seen.set(m.name, mine)
    s.listeners.add({ chunk: (seq) => { mine.set(seq, s.ring.get(seq)!.toString('hex')) }, end: () => {} })
  }
  await w.clock.advance(4000)
  p.stop()
  for (const id of victims) {
    const v = members.find((m) => m.identity.nodeId === id)!
    const s = v.streams.get('live')!
    assert.ok(s.counters.polluted >= 1, `${v.name} noticed`)
    assert.is.not(s.tree.parent?.nodeId, relay.identity.nodeId, `${v.name} left the lying relay`)
  }
  for (const [name, chunks] of seen) {
    for (const [seq, hex] of chunks) assert.is(hex, truth.get(seq), `${name} holds only the source's bytes (seq ${seq})`)
    if (name !== relay.name) assert.ok(chunks.size > 50, `${name} kept receiving`)
  }
  assert.is(await stopWorld(w), 0, 'every pooled frame went back to its pool')
})

test('a node refuses to take one of its ancestors as a child (no loops)', async () => {
  // One child each: a chain source → a → b → c.
  const w = await buildWorld({ seed: 7, count: 4, uploadBytesPerSec: () => 150_000 })
  const [src, ...members] = w.nodes
  const source = src!.streams.publish('live')
  const p = pump(w, source, 26)
  await w.clock.advance(500)
  for (const m of members) { await settle(w.clock, m.streams.subscribe('live', 5000), 6000); await w.clock.advance(300) }
  await w.clock.advance(1000)
  const byDepth = (d: number) => members.find((m) => m.streams.get('live')!.tree.depth === d)!
  const top = byDepth(1)
  const deep = byDepth(3)
  assert.ok(deep.streams.get('live')!.tree.path.includes(top.identity.nodeId))
  const refusals = deep.streams.get('live')!.tree.counters.refusals
  top.streams.get('live')!.tree.join([{ nodeId: deep.identity.nodeId, depth: 2, spare: 1, uptimeS: 0, port: 0, address: '' }])
  await w.clock.advance(1000)
  assert.is(deep.streams.get('live')!.tree.counters.refusals, refusals + 1, 'the descendant refused')
  assert.not.ok(deep.streams.get('live')!.tree.children.has(top.identity.nodeId))
  assert.is.not(top.streams.get('live')!.tree.parent?.nodeId, deep.identity.nodeId)
  p.stop()
  assert.is(await stopWorld(w), 0, 'every pooled frame went back to its pool')
})

test.run()
