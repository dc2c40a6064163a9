// The peer link on both network twins: the authenticated handshake, named
// channels, bounded queues with expiry, liveness, duplicates and idle links.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../../src/errors'
import { SimClock, SimNetwork, createLinuxNet, createRealClock, createSeededRandom, type Clock, type Net, type SimHost } from '../../../src/hal'
import { createKeyPair, identityFromKeyPair, type Identity } from '../../../src/identity'
import { silentLogger } from '../../../src/log'
import { createLinkHost, type LinkHost, allocFrame, encodeFrame, framePayload, type Link, type LinkHostOptions } from '../../../src/protocol/link'
import { LINK_QUEUE_FRAMES_MAX } from '../../../src/limits'

const ident = (seed: number): Identity => identityFromKeyPair(createKeyPair(createSeededRandom(seed)))

interface World { clock: Clock, netA: Net, netB: Net, bAddress: string, wait (ms: number): Promise<void>, sim?: { network: SimNetwork, a: SimHost, b: SimHost } }

function simWorld (latencyMs = 2, uplinkBytesPerSec = 0): World {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed: 3, conditions: { latencyMs } })
  const a = network.addHost('a', [{ nic: 'eth0', address: '10.0.0.1', prefixLength: 24 }], { uplinkBytesPerSec })
  const b = network.addHost('b', [{ nic: 'eth0', address: '10.0.0.2', prefixLength: 24 }])
  return { clock, netA: a, netB: b, bAddress: '10.0.0.2', wait: (ms) => clock.advance(ms), sim: { network, a, b } }
}

function linuxWorld (): World {
  const net = createLinuxNet()
  return { clock: createRealClock(), netA: net, netB: net, bAddress: '127.0.0.1', wait: (ms) => new Promise((r) => setTimeout(r, ms)) }
}

function host (w: World, net: Net, identity: Identity, extra: Partial<LinkHostOptions> = {}): LinkHost {
  return createLinkHost({ net, clock: w.clock, identity, log: silentLogger, host: w.sim === undefined ? '127.0.0.1' : undefined, port: 0, channels: ['stream'], ...extra })
}

/** Await p while driving the world's clock, with a deadline. */
async function drive<T> (w: World, p: Promise<T>, ms = 3000): Promise<T> {
  let done = false
  let value: T | undefined
  let error: unknown
  p.then((v) => { done = true; value = v }, (e) => { done = true; error = e })
  for (let t = 0; t < ms && !done; t += 10) await w.wait(10)
  if (!done) throw new Error(`not settled within ${ms} ms`)
  if (error !== undefined) throw error
  return value as T
}

for (const [name, make] of [['sim', simWorld], ['linux', linuxWorld]] as const) {
  test(`${name}: handshake proves both keys; frames flow on a named channel both ways`, async () => {
    const w = make()
    const ia = ident(1); const ib = ident(2)
    const a = host(w, w.netA, ia); const b = host(w, w.netB, ib)
    await a.start(); const port = await b.start()
    const gotB: string[] = []; const gotA: string[] = []
    b.on('stream', (link, frame) => { gotB.push(`${link.nodeId.slice(0, 4)}:${framePayload(frame).toString()}`); link.send('stream', Buffer.from('pong')) })
    a.on('stream', (_l, frame) => { gotA.push(framePayload(frame).toString()) })
    const link = await drive(w, a.connect(w.bAddress, port, ib.nodeId))
    assert.is(link.nodeId, ib.nodeId)
    assert.ok(link.publicKey.equals(ib.publicKey))
    assert.is(link.peerListenPort, port)
    assert.ok(link.serves('stream'))
    assert.ok(link.send('stream', Buffer.from('ping')))
    for (let i = 0; i < 100 && gotA.length === 0; i++) await w.wait(10)
    assert.equal(gotB, [`${ia.nodeId.slice(0, 4)}:ping`])
    assert.equal(gotA, ['pong'])
    assert.is(b.get(ia.nodeId)?.nodeId, ia.nodeId, 'the accepting side knows who connected')
    assert.is(await drive(w, a.connect(w.bAddress, port, ib.nodeId)), link, 'a second connect reuses the open link')
    await a.stop(); await b.stop()
  })

  test(`${name}: the accepting side stops while the peer keeps its link open`, async () => {
    const w = make()
    const ia = ident(1); const ib = ident(2)
    const a = host(w, w.netA, ia); const b = host(w, w.netB, ib)
    await a.start(); const port = await b.start()
    const link = await drive(w, a.connect(w.bAddress, port, ib.nodeId))
    await drive(w, b.stop(), 2000) // a server does not close while accepted sockets stay open: links must close first
    for (let i = 0; i < 100 && link.open; i++) await w.wait(10)
    assert.not.ok(link.open, 'the peer sees its link closed')
    await a.stop()
  })

  test(`${name}: a peer with another key than expected is refused`, async () => {
    const w = make()
    const a = host(w, w.netA, ident(1)); const b = host(w, w.netB, ident(2))
    await a.start(); const port = await b.start()
    const err = await drive(w, a.connect(w.bAddress, port, ident(3).nodeId).then(() => null, (e: CanopyError) => e))
    assert.is(err?.code, 'LINK_HANDSHAKE_FAILED')
    assert.is(a.size, 0)
    await a.stop(); await b.stop()
  })
}

test('sim: a forged proof (a key the peer does not hold) fails the handshake on the other side', async () => {
  const w = simWorld()
  const real = ident(2)
  const a = host(w, w.netA, ident(1))
  // b claims real's public key but signs with another private key.
  const b = host(w, w.netB, { ...real, privateKey: ident(9).privateKey })
  await a.start(); const port = await b.start()
  const err = await drive(w, a.connect(w.bAddress, port).then(() => null, (e: CanopyError) => e))
  assert.is(err?.code, 'LINK_HANDSHAKE_FAILED')
  assert.is(a.counters.handshakeFailures, 1)
  await a.stop(); await b.stop()
})

test('sim: garbage or channel frames before the handshake close the connection', async () => {
  const w = simWorld()
  const b = host(w, w.netB, ident(2))
  const port = await b.start()
  for (const junk of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), encodeFrame(1, Buffer.from('early')), encodeFrame(0, Buffer.from([99]))]) {
    const s = await drive(w, w.netA.connect(w.bAddress, port, 1000))
    let closed = false
    s.on('close', () => { closed = true }); s.on('error', () => {})
    s.on('data', () => {})
    s.write(junk)
    for (let i = 0; i < 50 && !closed; i++) await w.wait(10)
    assert.ok(closed, `closed after ${junk.subarray(0, 8).toString('hex')}`)
  }
  assert.is(b.size, 0)
  await b.stop()
})

test('sim: the send queue is bounded by frames and bytes; expired frames are dropped at the head', async () => {
  const w = simWorld(1, 1_000_000)
  const ia = ident(1); const ib = ident(2)
  const a = host(w, w.netA, ia); const b = host(w, w.netB, ib)
  await a.start(); const port = await b.start()
  let got = 0
  b.on('stream', () => { got++ })
  const link: Link = await drive(w, a.connect(w.bAddress, port, ib.nodeId))
  // Nothing leaves while the clock stands still, so everything queues.
  let accepted = 0
  // (The socket itself takes up to its 16 KiB high-water mark: ~16 frames of 1 KB.)
  const small = encodeFrame(1, Buffer.alloc(1000))
  for (let i = 0; i < LINK_QUEUE_FRAMES_MAX + 100; i++) if (link.sendFrame(small)) accepted++
  assert.ok(accepted <= LINK_QUEUE_FRAMES_MAX + 20, `accepted ${accepted}`)
  assert.is(link.counters.droppedFull, LINK_QUEUE_FRAMES_MAX + 100 - accepted)
  // Polled on the simulated clock (a real-time interval raced the loop on a loaded machine).
  for (let t = 0; t < 3000 && link.queuedFrames > 0; t += 10) await w.wait(10)
  assert.is(link.queuedFrames, 0, 'the queue drains once the clock runs')
  const big = allocFrame(1, 60_000)
  let bigAccepted = 0
  for (let i = 0; i < 100; i++) if (link.sendFrame(big)) bigAccepted++
  assert.ok(bigAccepted < 40, `bytes bound: ${bigAccepted} large frames queued`)
  const before = link.counters.droppedExpired
  for (let i = 0; i < 5; i++) link.sendFrame(small, { expiresAtMs: w.clock.nowMs() + 1 })
  await w.wait(5_000)
  assert.ok(link.counters.droppedExpired > before, 'frames stuck behind large ones expired instead of being written late')
  assert.ok(got > 0)
  await a.stop(); await b.stop()
})

test('sim: a silently dead peer is noticed by missing pings; a restarted peer replaces its old link', async () => {
  const w = simWorld()
  const ia = ident(1); const ib = ident(2)
  const timings = { keepaliveMs: 200, deadMs: 1000 }
  const a = host(w, w.netA, ia, { timings }); const b = host(w, w.netB, ib, { timings })
  await a.start(); const port = await b.start()
  const link = await drive(w, a.connect(w.bAddress, port, ib.nodeId))
  await w.wait(3000)
  assert.is(link.state, 'open', 'pings keep an idle link alive')
  assert.type(link.rttMs, 'number')
  w.sim!.network.partition([[w.sim!.a], [w.sim!.b]])
  await w.wait(1500)
  assert.is(link.state, 'closed')
  assert.is(link.closeReason, 'dead')
  w.sim!.network.partition(null)
  await a.stop(); await b.stop()
})

test('sim: simultaneous dials leave one link on both sides; idle unpinned links close', async () => {
  const w = simWorld()
  const ia = ident(1); const ib = ident(2)
  const a = host(w, w.netA, ia, { idleMs: 4000 }); const b = host(w, w.netB, ib, { idleMs: 4000 })
  const pa = await a.start(); const pb = await b.start()
  const [la, lb] = await drive(w, Promise.all([a.connect(w.bAddress, pb, ib.nodeId), b.connect('10.0.0.1', pa, ia.nodeId)]))
  await w.wait(50)
  assert.is(a.size, 1); assert.is(b.size, 1)
  assert.is(a.get(ib.nodeId)?.initiator, ia.nodeId < ib.nodeId, 'the link dialled by the smaller id won on a')
  assert.is(b.get(ia.nodeId)?.initiator, ib.nodeId < ia.nodeId, 'and on b')
  assert.ok(la.open || lb.open)
  const dialler = ia.nodeId < ib.nodeId ? a : b
  const kept = dialler.list()[0]!
  kept.pin()
  await w.wait(6000)
  assert.is(a.size, 1, 'a pinned link stays open though idle')
  kept.unpin()
  await w.wait(6000)
  assert.is(a.size, 0, 'the dialling side closed it once unpinned')
  assert.is(b.size, 0)
  assert.is(dialler.counters.idleClosed, 1)
  await a.stop(); await b.stop()
})

test.run()
