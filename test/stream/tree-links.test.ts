// The stream tree on the simulated network with the agent's real links:
// joins, depth, redirects, a relay killed without warning, survivors lose
// nothing.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TsChunker, type Session } from '../../src/stream'
import { TsGen } from '../helpers/ts'
import { buildWorld, record, settle, type SimWorld } from '../helpers/stream-nodes'
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
  for (const n of w.nodes) { n.streams.stop(); await n.links.stop() }
})

test.run()
