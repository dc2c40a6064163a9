import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimClock } from '../../../src/hal'
import { PEERS_COUNT_MAX, PEERS_PER_ADDRESS_COUNT_MAX } from '../../../src/limits'
import { memoryLogger, silentLogger } from '../../../src/log'
import { peerList, type PeerOrigin } from '../../../src/protocol/peer-list/peer-list'
import type { PeerEvent, PeerInfo } from '../../../src/protocol'

const origin: PeerOrigin = { via: 'ssdp', location: 'http://192.168.1.2:8787/api/describe', nic: 'br-lan', bootId: 1, configId: 1 }
const peer = (i: number, o: Partial<PeerInfo> = {}): PeerInfo => ({
  nodeId: i.toString(16).padStart(32, '0'),
  publicKey: Buffer.alloc(32, i),
  address: `192.168.${i >> 8}.${i & 255}`,
  httpPort: 8787,
  udpPort: 8787,
  capabilities: [],
  name: `p${i}`,
  version: '0.1.0',
  lastSeenMs: 0,
  expiresMs: 60_000,
  ...o
})

test('added, updated only when the offer changes, refreshed silently, removed', () => {
  const clock = new SimClock()
  const list = peerList(clock, silentLogger)
  const events: string[] = []
  const off = list.on((e: PeerEvent) => events.push(`${e.type} ${e.peer.name}`))
  assert.is(list.upsert(peer(1), origin), 'added')
  assert.is(list.upsert(peer(1, { lastSeenMs: 5, expiresMs: 90_000 }), origin), 'refreshed')
  assert.is(list.get(peer(1).nodeId)?.expiresMs, 90_000)
  assert.is(list.upsert(peer(1, { capabilities: ['provider'] }), origin), 'updated')
  assert.is(list.upsert(peer(1, { capabilities: ['provider'], address: '192.168.0.9' }), origin), 'updated')
  assert.is(list.get(peer(1).nodeId)?.expiresMs, 90_000, 'an expiry never moves in')
  assert.ok(list.remove(peer(1).nodeId, 'byebye'))
  assert.not.ok(list.remove(peer(1).nodeId, 'byebye'))
  assert.equal(events, ['added p1', 'updated p1', 'updated p1', 'removed p1'])
  off()
  list.upsert(peer(2), origin)
  assert.is(events.length, 4, 'unsubscribed')
})

test('bounded: a new peer evicts the stalest (oldest sign of life)', () => {
  const clock = new SimClock()
  const list = peerList(clock, silentLogger)
  assert.is(list.countMax, PEERS_COUNT_MAX)
  for (let i = 1; i <= PEERS_COUNT_MAX; i++) list.upsert(peer(i, { lastSeenMs: i === 77 ? -1 : i }), origin)
  const removed: string[] = []
  list.on((e) => { if (e.type === 'removed') removed.push(e.peer.name) })
  list.upsert(peer(1000, { lastSeenMs: 500 }), origin)
  assert.is(list.size, PEERS_COUNT_MAX)
  assert.equal(removed, ['p77'])
  assert.is(list.stats.removed.evicted, 1)
  assert.is(list.upsert(peer(5, { lastSeenMs: 600 }), origin), 'refreshed', 'a known peer does not evict anyone')
  assert.is(list.size, PEERS_COUNT_MAX)
})

test('one address holds at most 4 node ids; a fifth evicts that address\'s stalest, not someone else', () => {
  const clock = new SimClock()
  const list = peerList(clock, silentLogger)
  list.upsert(peer(1, { lastSeenMs: -100 }), origin)
  for (let i = 10; i < 14; i++) list.upsert(peer(i, { address: '192.168.1.66', lastSeenMs: i }), origin)
  const removed: string[] = []
  list.on((e) => { if (e.type === 'removed') removed.push(e.peer.name) })
  list.upsert(peer(20, { address: '192.168.1.66', lastSeenMs: 50 }), origin)
  assert.equal(removed, ['p10'])
  assert.is(list.list().filter((p) => p.address === '192.168.1.66').length, PEERS_PER_ADDRESS_COUNT_MAX)
  assert.ok(list.get(peer(1).nodeId) !== undefined, 'the older peer elsewhere stays')
})

test('expiry on the HAL clock: touch pushes it out, sweep removes what has passed', async () => {
  const clock = new SimClock()
  const list = peerList(clock, silentLogger)
  list.upsert(peer(1, { expiresMs: 1_000 }), origin)
  list.upsert(peer(2, { expiresMs: 3_000 }), origin)
  await clock.advance(999)
  assert.is(list.sweep(), 0)
  assert.ok(list.touch(peer(1).nodeId, 2_000))
  assert.is(list.get(peer(1).nodeId)?.lastSeenMs, 999)
  assert.not.ok(list.touch('f'.repeat(32), 2_000))
  await clock.advance(1_001)
  assert.is(list.sweep(), 1)
  assert.equal(list.list().map((p) => p.name), ['p2'])
  await clock.advance(1_000)
  assert.is(list.sweep(), 1)
  assert.is(list.size, 0)
  assert.is(list.stats.removed.expired, 2)
})

test('a static peer stays static when SSDP also hears it; a throwing listener does not break the list', () => {
  const clock = new SimClock()
  const { logger, lines } = memoryLogger()
  const list = peerList(clock, logger)
  list.on(() => { throw new Error('listener bug') })
  list.upsert(peer(1), { via: 'static', location: 'http://192.168.0.1:8787/api/describe', nic: null, bootId: null, configId: null })
  list.upsert(peer(1, { name: 'renamed' }), origin)
  assert.is(list.origin(peer(1).nodeId)?.via, 'static')
  assert.is(list.origin(peer(1).nodeId)?.bootId, 1)
  assert.is(list.get(peer(1).nodeId)?.name, 'renamed')
  assert.ok(lines.some((l) => l.msg === 'peer listener failed'))
})

test.run()
