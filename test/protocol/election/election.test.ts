// The designated-provider election: the criteria orders, then on the
// simulated LAN: 50 nodes with 5 % loss converge on the gateway; takeover
// within 5 s when the provider dies or says byebye; a healed partition
// collapses to one provider; no churn for small differences; non-candidates
// never win.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimNics, simNic } from '../../../src/hal'
import { ELECTION_TAKEOVER_MS_MAX } from '../../../src/limits'
import { beatsCandidate, beatsProvider, displaces, measureCriteria, type Claim, type Criteria } from '../../../src/protocol'
import { buildLan, untilAgreed, type Lan } from '../../helpers/lan'
import { testSeed } from '../../helpers/seed'

const claim = (nodeId: string, c: Partial<Criteria>): Claim => ({ nodeId, criteria: { w: false, b: 0, f: 0, u: 0, h: 80, ...c } })

test('criteria: WAN first, then bandwidth, flash, uptime classes, then the lower node id', () => {
  assert.ok(beatsCandidate(claim('b', { w: true }), claim('a', { b: 1000, f: 1e6, u: 1e6 })))
  assert.ok(beatsCandidate(claim('b', { w: true, b: 100 }), claim('a', { w: true, b: 50 })))
  assert.not.ok(beatsCandidate(claim('b', { w: true, b: 100 }), claim('a', { w: true, b: 120 })), '100 and 120 Mbit/s are one class')
  assert.ok(beatsCandidate(claim('b', { f: 4096 }), claim('a', { f: 1024 })))
  assert.ok(beatsCandidate(claim('b', { u: 7200 }), claim('a', { u: 60 })))
  assert.ok(beatsCandidate(claim('a', { u: 100 }), claim('b', { u: 120 })), 'same class: the lower id')
  assert.ok(beatsProvider(claim('a', { f: 0 }), claim('b', { f: 1e6, u: 1e6 })), 'providers collapse by stable values only')
  assert.ok(displaces(claim('b', { w: true }), claim('a', {})))
  assert.not.ok(displaces(claim('a', { f: 1e6 }), claim('b', {})), 'no churn for more flash')
  assert.not.ok(displaces(claim('a', {}), claim('b', {})), 'nor for a lower id')
})

test('criteria are measured from the interfaces', () => {
  const nics = new SimNics([simNic('br-lan', [['192.168.1.1', 24]]), simNic('wan', [['203.0.113.2', 24]], { speedMbps: 940 })])
  assert.equal(measureCriteria({ nics, wanMbps: 0, freeFlashBytes: 3 * 1048576, uptimeMs: 61_500, httpPort: 8787 }), { w: true, b: 940, f: 3, u: 61, h: 8787 })
  assert.is(measureCriteria({ nics, wanMbps: 50, freeFlashBytes: 0, uptimeMs: 0, httpPort: 1 }).b, 50, 'configured bandwidth wins')
  const lanOnly = new SimNics([simNic('eth0', [['192.168.1.9', 24]])])
  assert.equal(measureCriteria({ nics: lanOnly, wanMbps: 50, freeFlashBytes: 0, uptimeMs: 0, httpPort: 1 }), { w: false, b: 0, f: 0, u: 0, h: 1 })
})

const converge = (lan: Lan, maxMs: number): Promise<{ provider: string, ms: number }> => untilAgreed(lan, maxMs, undefined, 50)

test('50 nodes with 5 % loss elect the gateway; it survives minutes of lossy heartbeats', async () => {
  const lan = buildLan({ nodes: 50, seed: testSeed('elect 50'), wan: [17], conditions: { loss: 0.05, jitterMs: 2 } })
  await lan.start()
  const { provider, ms } = await converge(lan, 3_000)
  assert.is(provider, lan.nodes[17]!.identity.nodeId)
  const sent = lan.network.stats.datagramsSent
  await lan.clock.advance(120_000)
  assert.is(new Set(lan.providers()).size, 1)
  assert.is(lan.providers()[0], provider, 'no change in two minutes of 5 % loss')
  const perSecond = (lan.network.stats.datagramsSent - sent) / 120
  assert.ok(perSecond < 2 * 50, `steady state ~one heartbeat per peer per second: ${perSecond.toFixed(0)}/s`)
  console.log(`  elected in ${ms} ms; steady state ${perSecond.toFixed(0)} datagrams/s for 50 nodes`)
  await lan.stop()
})

test('without a gateway the best candidate wins, once', async () => {
  const lan = buildLan({ nodes: 20, seed: testSeed('elect no wan'), conditions: { jitterMs: 3 } })
  await lan.start()
  const { provider } = await converge(lan, 3_000)
  const winner = lan.nodes.find((n) => n.identity.nodeId === provider)!
  for (const n of lan.nodes) {
    if (n !== winner) assert.not.ok(beatsCandidate({ nodeId: n.identity.nodeId, criteria: n.election.criteria() }, { nodeId: provider, criteria: winner.election.criteria() }), 'nobody beats the winner')
  }
  assert.is(lan.nodes.reduce((s, n) => s + n.election.stats.changes, 0), 20, 'each node changed provider once')
  await lan.stop()
})

test('the provider is killed: the next best takes over within 5 s (50 nodes, 5 % loss)', async () => {
  const lan = buildLan({ nodes: 50, seed: testSeed('elect takeover'), wan: [3, 30], conditions: { loss: 0.05, jitterMs: 2 } })
  await lan.start()
  const first = await converge(lan, 3_000)
  await lan.clock.advance(5_000)
  const dead = lan.nodes.find((n) => n.identity.nodeId === first.provider)!
  lan.kill(dead.index)
  const next = await converge(lan, ELECTION_TAKEOVER_MS_MAX)
  assert.is.not(next.provider, first.provider)
  assert.ok([3, 30].map((i) => lan.nodes[i]!.identity.nodeId).includes(next.provider), 'the other WAN node')
  console.log(`  takeover after ${next.ms} ms`)
  await lan.stop()
})

test('a byebye (peer removed) starts the takeover at once', async () => {
  const lan = buildLan({ nodes: 10, seed: testSeed('elect byebye'), wan: [0] })
  await lan.start()
  const first = await converge(lan, 3_000)
  lan.kill(0)
  for (const n of lan.alive()) n.peers.remove(first.provider)
  const next = await converge(lan, 1_000)
  assert.ok(next.ms < 1_000, `${next.ms} ms`)
  await lan.stop()
})

test('a partition elects a second provider; healing collapses them into one', async () => {
  const lan = buildLan({ nodes: 30, seed: testSeed('elect split'), wan: [5], conditions: { loss: 0.02 } })
  await lan.start()
  const first = await converge(lan, 3_000)
  const hosts = lan.nodes.map((n) => n.hal.net)
  lan.network.partition([hosts.slice(0, 15), hosts.slice(15)])
  await lan.clock.advance(ELECTION_TAKEOVER_MS_MAX + 1_000)
  const sides = [new Set(lan.providers().slice(0, 15)), new Set(lan.providers().slice(15))]
  assert.equal([...sides[0]!], [first.provider], 'the gateway side keeps its provider')
  assert.is(sides[1]!.size, 1)
  const other = [...sides[1]!][0]!
  assert.ok(other !== null && other !== first.provider, 'the other side elected its own')
  lan.network.partition(null)
  const healed = await converge(lan, 3_000)
  assert.is(healed.provider, first.provider, 'the one with WAN access stays')
  console.log(`  split healed in ${healed.ms} ms`)
  await lan.stop()
})

test('a newcomer displaces the provider only with better WAN access', async () => {
  const lan = buildLan({ nodes: 8, seed: testSeed('elect newcomer'), wan: [7], election: false })
  await lan.start()
  for (const n of lan.nodes.slice(0, 7)) await n.election.start()
  const first = await converge({ ...lan, alive: () => lan.nodes.slice(0, 7), providers: () => lan.nodes.slice(0, 7).map((n) => n.election.current()?.nodeId ?? null) }, 3_000)
  await lan.clock.advance(10_000)
  await lan.nodes[7]!.election.start() // the gateway boots last
  const next = await converge(lan, 3_000)
  assert.is(next.provider, lan.nodes[7]!.identity.nodeId)
  assert.is.not(first.provider, next.provider)
  await lan.stop()
})

test('a late node without better WAN access joins the sitting provider', async () => {
  const lan = buildLan({ nodes: 8, seed: testSeed('elect late'), election: false })
  await lan.start()
  for (const n of lan.nodes.slice(1)) await n.election.start()
  await lan.clock.advance(3_000)
  const before = lan.nodes[1]!.election.current()!.nodeId
  await lan.nodes[0]!.election.start()
  await lan.clock.advance(1_000)
  assert.equal(new Set(lan.providers()), new Set([before]))
  await lan.stop()
})

test('non-candidates never become provider', async () => {
  const lan = buildLan({ nodes: 6, seed: testSeed('elect non-candidates'), nonCandidates: [0, 1, 2, 3, 4] })
  await lan.start()
  const { provider } = await converge(lan, 3_000)
  assert.is(provider, lan.nodes[5]!.identity.nodeId)
  lan.kill(5)
  await lan.clock.advance(10_000)
  assert.equal(lan.providers(), [null, null, null, null, null], 'nobody left to provide')
  await lan.stop()
})

test.run()
