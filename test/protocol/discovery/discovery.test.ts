// Discovery on a simulated LAN: agents find each other, leave, expire, restart
// and change; forged announcements do not get in; static peers work without
// multicast.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DESCRIBE_REFETCH_MS } from '../../../src/limits'
import { formatPublicKey } from '../../../src/crypto'
import { buildAlive, buildByebye } from '../../../src/protocol/ssdp/messages'
import { SSDP_GROUP, SSDP_PORT } from '../../../src/protocol/ssdp/names'
import { serveDescribe, signDescribe, type PeerEvent } from '../../../src/protocol'
import { SimLan, SIM_HTTP_PORT, identityFor } from '../../helpers/sim-lan'
import { httpGet } from '../../../src/protocol/discovery/http-get'

test('two agents find each other within a second, with what each says about itself', async () => {
  const lan = await SimLan.create({ seed: 1, count: 2 })
  const took = await lan.until(() => lan.complete(), 5_000)
  assert.ok(took !== null && took <= 1_000, `took ${took} ms`)
  const [a, b] = lan.nodes as [typeof lan.nodes[0], typeof lan.nodes[0]]
  const seen = a.discovery.peers.get(b.identity.nodeId)!
  assert.is(seen.address, b.host.address)
  assert.is(seen.httpPort, SIM_HTTP_PORT)
  assert.is(seen.udpPort, SIM_HTTP_PORT)
  assert.is(seen.name, b.name)
  assert.is(formatPublicKey(seen.publicKey), b.identity.publicKeyText)
  assert.ok(seen.expiresMs > lan.clock.nowMs() + 250_000, 'expires at its max-age (300 s)')
  assert.equal(a.discovery.peers.origin(b.identity.nodeId), { via: 'ssdp', location: `http://${b.host.address}:${SIM_HTTP_PORT}/api/describe`, nic: 'br-lan', bootId: a.discovery.peers.origin(b.identity.nodeId)!.bootId, configId: b.discovery.configId() })
  await lan.stop()
})

test('a late joiner is heard by its NOTIFY and hears the others by its search', async () => {
  const lan = await SimLan.create({ seed: 2, count: 3 })
  await lan.until(() => lan.complete(), 5_000)
  await lan.clock.advance(30_000) // everyone quiet (periodic NOTIFY is 60 s)
  const late = lan.add()
  await lan.start(late)
  const took = await lan.until(() => lan.complete(), 5_000)
  assert.ok(took !== null && took <= 1_100, `took ${took} ms`)
  await lan.stop()
})

test('byebye removes a peer at once; a peer that dies silently expires at its max-age', async () => {
  const lan = await SimLan.create({ seed: 3, count: 3, config: { maxAgeSeconds: 60 } })
  await lan.until(() => lan.complete(), 5_000)
  const [a, b, c] = lan.nodes as [typeof lan.nodes[0], typeof lan.nodes[0], typeof lan.nodes[0]]
  const removed: string[] = []
  a.discovery.peers.on((e: PeerEvent) => { if (e.type === 'removed') removed.push(e.peer.name) })
  await b.discovery.stop()
  await lan.clock.advance(50)
  assert.equal(removed, ['n1'], 'byebye heard')
  const t0 = lan.clock.nowMs()
  c.host.kill()
  const gone = await lan.until(() => removed.includes('n2'), 120_000, 250)
  assert.ok(gone !== null, 'a dead peer is dropped')
  const lastHeard = a.discovery.peers.stats.removed.expired
  assert.is(lastHeard, 1)
  assert.ok(lan.clock.nowMs() - t0 <= 61_500, `dropped ${lan.clock.nowMs() - t0} ms after it died (max-age 60 s)`)
  await lan.stop()
})

test('forged announcements do not get in: someone else\'s id, a replayed description, a LOCATION elsewhere, a foreign byebye', async () => {
  const lan = await SimLan.create({ seed: 4, count: 2 })
  await lan.until(() => lan.complete(), 5_000)
  const [a, b] = lan.nodes as [typeof lan.nodes[0], typeof lan.nodes[0]]
  const victim = a.identity
  // Mallory, on the LAN, captures the victim's description (no nonce) and serves it as her own.
  const mallory = lan.network.addHost('mallory', [{ nic: 'br-lan', address: '192.168.1.99', prefixLength: 24 }])
  const captured = httpGet(mallory, lan.clock, { host: a.host.address, port: SIM_HTTP_PORT, path: '/api/describe' }, { timeoutMs: 2000, headBytesMax: 4096, bodyBytesMax: 16384 }, 'm')
  await lan.clock.advance(20)
  const replay = await captured
  const own = identityFor(999)
  let served = 0
  await serveDescribe(mallory, 8001, () => { served++; return replay })
  await serveDescribe(mallory, 8002, (nonce) => { served++; return signDescribe(own, { ...a.discovery.fields(), addresses: ['192.168.1.99'] }, nonce) })
  const sock = await mallory.udp({ port: 0 })
  sock.setMulticastInterface('192.168.1.99')
  const claim = (location: string, bootId: number) => buildAlive({ nodeId: victim.nodeId, location, maxAgeSeconds: 300, server: 'x', bootId, configId: 1 })
  const before = { ...b.discovery.ssdp!.stats.dropped }
  sock.send(claim('http://192.168.1.99:8001/api/describe', 1), SSDP_PORT, SSDP_GROUP) // replayed description: nonce and address do not match
  sock.send(claim('http://192.168.1.99:8002/api/describe', 2), SSDP_PORT, SSDP_GROUP) // her own key: the id does not derive from it
  sock.send(claim(`http://${a.host.address}:${SIM_HTTP_PORT}/api/describe`, 3), SSDP_PORT, SSDP_GROUP) // LOCATION at the victim, from her address
  sock.send(buildByebye(victim.nodeId), SSDP_PORT, SSDP_GROUP) // a byebye for the victim, from her address
  await lan.clock.advance(3_000)
  assert.is(served, 2, 'her two LOCATIONs were fetched once each')
  assert.is(b.discovery.ssdp!.stats.dropped['location-mismatch'] - before['location-mismatch'], 1)
  assert.is(b.discovery.queue.stats.failed.DESCRIBE_INVALID, 2)
  const entry = b.discovery.peers.get(victim.nodeId)
  assert.ok(entry !== undefined, 'the victim is still listed')
  assert.is(entry.address, a.host.address, 'at its own address')
  assert.is(b.discovery.peers.size, 1)
  await lan.stop()
})

test('a new CONFIGID (capabilities changed) makes peers fetch the description again', async () => {
  const lan = await SimLan.create({ seed: 5, count: 2 })
  await lan.until(() => lan.complete(), 5_000)
  await lan.clock.advance(DESCRIBE_REFETCH_MS)
  const [a, b] = lan.nodes as [typeof lan.nodes[0], typeof lan.nodes[0]]
  const events: string[] = []
  b.discovery.peers.on((e) => events.push(`${e.type} ${e.peer.capabilities.join(',')}`))
  a.discovery.addCapability('provider')
  await lan.clock.advance(100)
  assert.equal(events, ['updated provider'])
  assert.equal(b.discovery.peers.get(a.identity.nodeId)?.capabilities, ['provider'])
  await lan.stop()
})

test('a flood of forged NOTIFYs costs a bounded number of fetches', async () => {
  const lan = await SimLan.create({ seed: 6, count: 1 })
  await lan.clock.advance(3_000)
  const [a] = lan.nodes as [typeof lan.nodes[0]]
  const mallory = lan.network.addHost('mallory', [{ nic: 'br-lan', address: '192.168.1.99', prefixLength: 24 }])
  const sock = await mallory.udp({ port: 0 })
  sock.setMulticastInterface('192.168.1.99')
  const connectionsBefore = lan.network.stats.connections
  for (let i = 0; i < 1_000; i++) {
    const nodeId = identityFor(5_000 + (i % 50)).nodeId
    sock.send(buildAlive({ nodeId, location: `http://192.168.1.99:${1_000 + i}/d`, maxAgeSeconds: 300, server: 'x', bootId: i, configId: 1 }), SSDP_PORT, SSDP_GROUP)
  }
  await lan.clock.advance(5_000)
  const q = a.discovery.queue.stats
  assert.ok(q.requested <= 68, `${q.requested} fetches queued for 1 000 NOTIFYs`)
  assert.ok(q.refused.full >= 900, JSON.stringify(q.refused))
  assert.is(lan.network.stats.connections - connectionsBefore, 0, 'nothing listens there: every connect refused, none accepted')
  assert.is(a.discovery.peers.size, 0)
  await lan.stop()
})

test('static peers: found without multicast, checked again, dropped when gone', async () => {
  const lan = new SimLan({ seed: 7, count: 0, config: { enabled: false, staticRecheckMs: 10_000 } })
  const a = lan.add({ config: { staticPeers: ['http://192.168.1.11:8787'] } })
  const b = lan.add()
  for (const n of lan.nodes) await lan.start(n)
  await lan.clock.advance(100)
  assert.is(a.discovery.ssdp, null, 'no SSDP at all')
  assert.is(a.discovery.peers.get(b.identity.nodeId)?.address, '192.168.1.11')
  assert.is(a.discovery.peers.origin(b.identity.nodeId)?.via, 'static')
  assert.is(b.discovery.peers.size, 0, 'static is one-way')
  const verified = a.discovery.queue.stats.verified
  await lan.clock.advance(25_000)
  assert.ok(a.discovery.queue.stats.verified >= verified + 1, 're-checked')
  await b.server!.close()
  const gone = await lan.until(() => a.discovery.peers.size === 0, 60_000, 500)
  assert.ok(gone !== null && gone <= 35_000, `dropped ${gone} ms after its describe went away (3 re-checks)`)
  await lan.stop()
})

test.run()
