// Resolution on the simulated LAN: hits in tens of ms, misses decided at
// RESOLVE_MISS_MS, partial holders, load-scaled answers, FOUND cancelling,
// downloads followed to completion, third-party answers for the designated
// provider, and 50 nodes with 5 % loss finding every holder.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../../src/errors'
import { createSeededRandom } from '../../../src/hal'
import { PIECE_RANGES_COUNT_MAX, RESOLVE_ANSWER_JITTER_MS, RESOLVE_ANSWER_LOAD_MS, RESOLVE_LOOKUPS_COUNT_MAX, RESOLVE_MISS_MS, RESOLVE_SETTLE_MS } from '../../../src/limits'
import { baseUrlOf, type FollowEvent, type ProviderRef, type ProviderView } from '../../../src/protocol'
import { buildLan, HTTP_PORT, UDP_PORT, type Lan } from '../../helpers/lan'
import { testSeed } from '../../helpers/seed'

const id = (n: number): string => n.toString(16).padStart(64, '0')
const noProvider: ProviderView = { current: () => null }

async function lanOf (nodes: number, extra: Partial<Parameters<typeof buildLan>[0]> = {}): Promise<Lan> {
  const lan = buildLan({ nodes, seed: testSeed(`resolve ${nodes}`), election: false, provider: () => noProvider, ...extra })
  await lan.start()
  return lan
}

test('a hit names the holder, its pieces and its HTTP base, within tens of ms', async () => {
  const lan = await lanOf(10)
  const holder = lan.nodes[7]!
  holder.content.hold(id(1))
  const r = await lan.run(lan.nodes[2]!.resolver.resolve(id(1)))
  assert.is(r.outcome, 'hit')
  assert.is(r.holders.length, 1)
  assert.is(r.holders[0]!.nodeId, holder.identity.nodeId)
  assert.is(r.holders[0]!.baseUrl, baseUrlOf(holder.info.address, HTTP_PORT))
  assert.is(r.holders[0]!.pieces, null, 'all pieces')
  assert.ok(r.elapsedMs <= RESOLVE_ANSWER_JITTER_MS + 6, `answered in ${r.elapsedMs} ms of simulated time`)
  assert.is(r.rounds, 1)
  await lan.stop()
})

test('a miss is decided at RESOLVE_MISS_MS after two retries', async () => {
  const lan = await lanOf(10)
  const r = await lan.run(lan.nodes[0]!.resolver.resolve(id(2)))
  assert.is(r.outcome, 'miss')
  assert.is(r.elapsedMs, RESOLVE_MISS_MS)
  assert.is(r.rounds, 3)
  assert.equal(r.holders, [])
  await lan.stop()
})

test('wanted pieces: partial holders are reported at settle; two halves make a hit', async () => {
  const lan = await lanOf(6)
  lan.nodes[1]!.content.hold(id(3), [[0, 50]])
  const partial = await lan.run(lan.nodes[0]!.resolver.resolve(id(3), { pieces: [[0, 100]] }))
  assert.is(partial.outcome, 'partial')
  assert.is(partial.elapsedMs, RESOLVE_SETTLE_MS)
  assert.equal(partial.holders[0]!.pieces, [[0, 50]])
  lan.nodes[2]!.content.hold(id(3), [[50, 100]])
  const hit = await lan.run(lan.nodes[0]!.resolver.resolve(id(3), { pieces: [[0, 100]] }))
  assert.is(hit.outcome, 'hit')
  assert.is(hit.holders.length, 2)
  lan.nodes[3]!.content.hold(id(4), [[200, 300]])
  const none = await lan.run(lan.nodes[0]!.resolver.resolve(id(4), { pieces: [[0, 100]] }))
  assert.is(none.outcome, 'miss', 'a holder of other pieces stays quiet')
  await lan.stop()
})

test('collect: a transfer hears every holder until settle; a plain lookup ends at the first', async () => {
  const lan = await lanOf(6)
  for (const n of [1, 2, 3]) lan.nodes[n]!.content.hold(id(5))
  const first = await lan.run(lan.nodes[0]!.resolver.resolve(id(5)))
  assert.is(first.outcome, 'hit')
  assert.ok(first.elapsedMs < RESOLVE_SETTLE_MS, `ended at the first covering answer (${first.elapsedMs} ms)`)
  const all = await lan.run(lan.nodes[0]!.resolver.resolve(id(5), { collect: true }))
  assert.is(all.outcome, 'hit')
  assert.is(all.holders.length, 3, 'every holder, for a transfer to spread its requests')
  assert.ok(all.elapsedMs >= RESOLVE_SETTLE_MS, `waited for settle (${all.elapsedMs} ms)`)
  await lan.stop()
})

test('loaded holders answer later, so the idle one is chosen; FOUND cancels the rest', async () => {
  const lan = await lanOf(8)
  const [idle, busy1, busy2] = [lan.nodes[1]!, lan.nodes[2]!, lan.nodes[3]!]
  for (const n of [idle, busy1, busy2]) n.content.hold(id(5))
  busy1.content.setLoad(1)
  busy2.content.setLoad(1)
  for (let i = 0; i < 20; i++) {
    const r = await lan.run(lan.nodes[0]!.resolver.resolve(id(5)))
    assert.is(r.outcome, 'hit')
    assert.is(r.holders[0]!.nodeId, idle.identity.nodeId, `trial ${i}`)
  }
  await lan.clock.advance(RESOLVE_ANSWER_JITTER_MS + RESOLVE_ANSWER_LOAD_MS + 10)
  assert.is(busy1.resolver.responder.stats.have + busy2.resolver.responder.stats.have, 0, 'the busy holders never had to answer')
  assert.is(busy1.resolver.responder.stats.cancelled + busy2.resolver.responder.stats.cancelled, 40)
  await lan.stop()
})

test('a download in progress is found and followed to completion', async () => {
  const lan = await lanOf(5)
  const dl = lan.nodes[3]!
  dl.content.startDownload(id(6), 10 * 1024 * 1024)
  dl.content.progress(id(6), 1024 * 1024, [[0, 4]])
  const requester = lan.nodes[0]!
  const r = await lan.run(requester.resolver.resolve(id(6)))
  assert.is(r.outcome, 'downloading')
  assert.is(r.elapsedMs, RESOLVE_SETTLE_MS)
  assert.is(r.downloads[0]!.nodeId, dl.identity.nodeId)
  assert.is(r.downloads[0]!.doneBytes, 1024 * 1024)
  assert.is(r.downloads[0]!.totalBytes, 10 * 1024 * 1024)
  assert.equal(r.downloads[0]!.pieces, [[0, 4]])
  const events: FollowEvent[] = []
  requester.resolver.follow(r.downloads[0]!, id(6), (e) => events.push(e))
  await lan.clock.advance(10)
  assert.is(events[0]?.type, 'progress', 'the current state at once')
  for (let mb = 2; mb <= 10; mb++) {
    dl.content.progress(id(6), mb * 1024 * 1024, [[0, mb * 4]])
    await lan.clock.advance(100)
  }
  await lan.clock.advance(300)
  const progress = events.filter((e) => e.type === 'progress')
  assert.ok(progress.length >= 4 && progress.length <= 8, `progress pushes are rate limited: ${progress.length}`)
  const last = progress[progress.length - 1] as Extract<FollowEvent, { type: 'progress' }>
  assert.is(last.doneBytes, 10 * 1024 * 1024)
  dl.content.finish(id(6))
  await lan.clock.advance(10)
  assert.equal(events[events.length - 1], { type: 'complete' })
  assert.is(dl.resolver.responder.stats.followers, 0)
  await lan.stop()
})

test('a follower notices a downloader that died', async () => {
  const lan = await lanOf(4)
  lan.nodes[2]!.content.startDownload(id(7))
  const r = await lan.run(lan.nodes[0]!.resolver.resolve(id(7)))
  const events: FollowEvent[] = []
  lan.nodes[0]!.resolver.follow(r.downloads[0]!, id(7), (e) => events.push(e))
  await lan.clock.advance(10)
  lan.kill(2)
  await lan.clock.advance(8_000)
  assert.equal(events.map((e) => e.type), ['progress', 'lost'])
  await lan.stop()
})

test('third parties answer for the designated provider the requester cannot reach', async () => {
  const provider = (n: Lan['nodes'][number]): ProviderRef => ({ nodeId: n.identity.nodeId, address: n.info.address, httpPort: HTTP_PORT, udpPort: UDP_PORT, baseUrl: baseUrlOf(n.info.address, HTTP_PORT), self: false })
  let lanRef: Lan | null = null
  const lan = await lanOf(6, {
    provider: (i) => (i === 5 ? noProvider : { current: () => (i === 0 ? { ...provider(lanRef!.nodes[0]!), self: true } : provider(lanRef!.nodes[0]!)) })
  })
  lanRef = lan
  const requester = lan.nodes[5]!
  requester.peers.remove(lan.nodes[0]!.identity.nodeId) // it cannot reach the provider itself
  const r = await lan.run(requester.resolver.resolve(id(8)))
  assert.is(r.outcome, 'miss')
  assert.is(r.provider?.nodeId, lan.nodes[0]!.identity.nodeId)
  assert.is(r.provider?.baseUrl, baseUrlOf(lan.nodes[0]!.info.address, HTTP_PORT))
  assert.ok([1, 2, 3, 4].map((i) => lan.nodes[i]!.identity.nodeId).includes(r.provider!.via), 'told by a third party')
  const third = [1, 2, 3, 4].reduce((s, i) => s + lan.nodes[i]!.resolver.responder.stats.thirdParty, 0)
  assert.ok(third >= 1 && third <= 4, `${third} third-party answers`)
  // Reaching the provider, it answers for itself first.
  requester.peers.set(lan.nodes[0]!.info)
  const direct = await lan.run(requester.resolver.resolve(id(9)))
  assert.is(direct.provider?.via, lan.nodes[0]!.identity.nodeId)
  // A requester that knows the provider does not ask: no answers at all.
  const before = lan.network.stats.datagramsSent
  const knowing = await lan.run(lan.nodes[1]!.resolver.resolve(id(10)))
  assert.is(knowing.outcome, 'miss')
  assert.is(knowing.provider?.via, lan.nodes[1]!.identity.nodeId)
  assert.is(lan.network.stats.datagramsSent - before, 3 * 5, 'three rounds of NEED to five peers, nothing else')
  await lan.stop()
})

test('50 nodes, 5 % loss: every lookup finds its holders; absent content is a miss', async () => {
  const seed = testSeed('resolve 50 lossy')
  const lan = buildLan({ nodes: 50, seed, election: false, provider: () => noProvider, conditions: { loss: 0.05, jitterMs: 2 } })
  await lan.start()
  const rnd = createSeededRandom(seed)
  const held = new Map<string, Set<string>>()
  for (let c = 0; c < 20; c++) {
    const holders = new Set<string>()
    for (let k = 0; k < 2 + rnd.int(3); k++) {
      const n = lan.nodes[rnd.int(50)]!
      n.content.hold(id(100 + c))
      holders.add(n.identity.nodeId)
    }
    held.set(id(100 + c), holders)
  }
  for (const [c, holders] of held) {
    let asker = lan.nodes[rnd.int(50)]!
    while (holders.has(asker.identity.nodeId)) asker = lan.nodes[rnd.int(50)]!
    const r = await lan.run(asker.resolver.resolve(c))
    assert.is(r.outcome, 'hit', `content ${c}`)
    for (const h of r.holders) assert.ok(holders.has(h.nodeId))
  }
  const miss = await lan.run(lan.nodes[0]!.resolver.resolve(id(999)))
  assert.is(miss.outcome, 'miss')
  assert.is(miss.elapsedMs, RESOLVE_MISS_MS)
  await lan.stop()
})

test('a fragmented holder tells the first ranges it can fit; too many wanted ranges is the caller\'s error', async () => {
  const lan = await lanOf(3)
  const many = Array.from({ length: PIECE_RANGES_COUNT_MAX + 10 }, (_, i) => [i * 2, i * 2 + 1] as [number, number])
  lan.nodes[1]!.content.hold(id(11), many)
  const r = await lan.run(lan.nodes[0]!.resolver.resolve(id(11), { pieces: [[0, 1]] }))
  assert.is(r.outcome, 'hit')
  assert.equal(r.holders[0]!.pieces, many.slice(0, PIECE_RANGES_COUNT_MAX))
  await lan.nodes[0]!.resolver.resolve(id(11), { pieces: many }).then(() => assert.unreachable(), (err: CanopyError) => assert.is(err.code, 'INPUT_INVALID'))
  await lan.nodes[0]!.resolver.resolve('not content').then(() => assert.unreachable(), (err: CanopyError) => assert.is(err.code, 'INPUT_INVALID'))
  await lan.stop()
})

test('lookups in progress are bounded', async () => {
  const lan = await lanOf(3)
  const pending = Array.from({ length: RESOLVE_LOOKUPS_COUNT_MAX }, (_, i) => lan.nodes[0]!.resolver.resolve(id(500 + i)))
  await lan.nodes[0]!.resolver.resolve(id(1)).then(() => assert.unreachable(), (err: CanopyError) => assert.is(err.code, 'LIMIT_REACHED'))
  await lan.run(Promise.all(pending))
  await lan.stop()
})

test.run()
