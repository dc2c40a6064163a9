// The wire transport on the simulated network: unicast to the peer list,
// multicast only when it is empty, strangers still verified, every drop
// counted by reason, replays refused (at once, out of order, after either
// side restarts), reordering inside the window accepted, bounded sending.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimClock, SimNetwork, createSimHal, type SimHal, type SimHost, type UdpSocket, type Datagram } from '../../../src/hal'
import { createKeyPair, identityFromKeyPair, type Identity } from '../../../src/identity'
import { memoryLogger, silentLogger } from '../../../src/log'
import { REPLAY_PERSIST_MS, REPLAY_WINDOW_COUNT, WIRE_SEND_BURST_COUNT_MAX, WIRE_SEND_QUEUE_COUNT_MAX, WIRE_SEND_TICK_MS, WIRE_SOURCE_BURST_MAX } from '../../../src/limits'
import { StaticPeerDirectory, createWireTransport, type WireTransport, encodeBody, sealEnvelope, type Inbound, type PeerInfo } from '../../../src/protocol'
import { encodeCbor } from '../../../src/protocol/wire/cbor'
import { createSeededRandom } from '../../../src/hal'
import { testSeed } from '../../helpers/seed'

const PORT = 8787
const C = 'ab'.repeat(32)

interface Node { host: SimHost, hal: SimHal, identity: Identity, peers: StaticPeerDirectory, wire: WireTransport, got: Inbound[], info: PeerInfo }

function world (seed = 1) {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed, conditions: { latencyMs: 1 } })
  const nodes = new Map<string, Node>()
  const make = (name: string, address: string, hal?: SimHal): Node => {
    const host = hal?.net ?? network.addHost(name, [{ nic: 'eth0', address, prefixLength: 24 }])
    const h = hal ?? createSimHal({ seed: address.length * 31 + nodes.size, host })
    const identity = nodes.get(name)?.identity ?? identityFromKeyPair(createKeyPair(h.random))
    const peers = nodes.get(name)?.peers ?? new StaticPeerDirectory()
    const wire = createWireTransport({ hal: h, identity, peers, log: silentLogger, port: PORT })
    const got: Inbound[] = []
    for (const t of ['NEED', 'HAVE', 'FOUND'] as const) wire.on(t, (m) => { got.push(m) })
    const info: PeerInfo = { nodeId: identity.nodeId, publicKey: identity.publicKey, address, httpPort: 80, udpPort: PORT, capabilities: [], name, version: 't', lastSeenMs: 0, expiresMs: Infinity }
    const n = { host, hal: h, identity, peers, wire, got, info }
    nodes.set(name, n)
    return n
  }
  /** A bare socket that records what reaches it: the eavesdropper. */
  const tap = async (name: string, address: string, port = PORT): Promise<{ socket: UdpSocket, heard: Datagram[] }> => {
    const host = network.addHost(name, [{ nic: 'eth0', address, prefixLength: 24 }])
    const socket = await host.udp({ port })
    const heard: Datagram[] = []
    socket.onMessage((d) => heard.push(d))
    return { socket, heard }
  }
  return { clock, network, make, tap }
}

const need = (r: number) => ({ r, c: C, q: false })

test('unicast to every peer; the receiver knows who sent it and where it came from', async () => {
  const w = world()
  const a = w.make('a', '10.0.0.1'); const b = w.make('b', '10.0.0.2'); const c = w.make('c', '10.0.0.3')
  a.peers.set(b.info); a.peers.set(c.info)
  for (const n of [a, b, c]) await n.wire.start()
  const { sent, multicast } = a.wire.broadcast('NEED', need(1))
  assert.equal(sent.sort(), [b.identity.nodeId, c.identity.nodeId].sort())
  assert.not.ok(multicast)
  await w.clock.advance(5)
  for (const n of [b, c]) {
    assert.is(n.got.length, 1)
    assert.is(n.got[0]!.sender.nodeId, a.identity.nodeId)
    assert.is(n.got[0]!.from.address, '10.0.0.1')
    assert.is(n.got[0]!.peer, undefined, 'a stranger to them, and still verified')
  }
  // A reply to a stranger goes back to where its datagram came from.
  b.wire.reply(b.got[0]!, 'HAVE', { r: 1, c: C, l: 0, h: 80 })
  await w.clock.advance(5)
  assert.is(a.got[0]?.name, 'HAVE')
  assert.is(a.got[0]?.peer?.nodeId, b.identity.nodeId, 'a knows b from its peer list')
  assert.is(a.wire.stats.multicastOut, 0)
})

test('multicast only while the peer list is empty', async () => {
  const w = world()
  const a = w.make('a', '10.0.0.1'); const b = w.make('b', '10.0.0.2')
  await a.wire.start(); await b.wire.start()
  assert.is(a.wire.broadcast('NEED', need(1)).multicast, true)
  await w.clock.advance(5)
  assert.is(b.got.length, 1, 'heard on the group')
  assert.is(a.got.length, 0)
  assert.ok(a.wire.stats.dropped.self >= 1, 'its own echo is dropped')
  a.peers.set(b.info)
  assert.is(a.wire.broadcast('NEED', need(2)).multicast, false)
  assert.is(a.wire.stats.multicastOut, 1)
  await w.clock.advance(5)
  assert.is(b.got.length, 2)
})

test('every kind of bad datagram is dropped and counted by reason', async () => {
  const w = world()
  const a = w.make('a', '10.0.0.1'); const b = w.make('b', '10.0.0.2')
  await a.wire.start(); await b.wire.start()
  const raw = await w.tap('raw', '10.0.0.9', 9999)
  const outside = await w.tap('outside', '203.0.113.9', 9999)
  const key = a.identity
  const seal = (name: 'NEED', counter: number, body: Buffer = encodeBody('NEED', need(1))): Buffer => sealEnvelope(name, key.publicKey, key.privateKey, counter, body)
  const send = (d: Buffer, from = raw.socket): void => from.send(d, PORT, '10.0.0.2')
  send(Buffer.from('hello'))
  send(Buffer.alloc(300, 0x41))
  const v2 = seal('NEED', 1); v2[2] = 2; send(v2)
  const t99 = seal('NEED', 2); t99[3] = 99; send(t99)
  const forged = seal('NEED', 3); forged[50] = forged[50]! ^ 1; send(forged)
  send(seal('NEED', 4, encodeCbor([1, 2, 3]))) // signed, but not a NEED body
  send(seal('NEED', 5, Buffer.from([0xd8, 0x33, 0x80]))) // signed packed-values tag
  send(seal('NEED', 6), outside.socket)
  const ok = seal('NEED', 7)
  send(ok); send(ok)
  const badKey = seal('NEED', 8); badKey.fill(0xff, 4, 36); send(badKey)
  await w.clock.advance(5)
  const d = b.wire.stats.dropped
  // The all-0xff key is refused as a key or fails its signature check, depending on the crypto library.
  assert.equal({ size: d.size, magic: d.magic, v: d.unknown_version, t: d.unknown_type, sig: d.signature + d.key, bad: d.malformed, src: d.source, replay: d.replay },
    { size: 1, magic: 1, v: 1, t: 1, sig: 2, bad: 2, src: 1, replay: 1 })
  assert.is(b.got.length, 1, 'only the good one, once')
})

test('replays: at once, out of order, after the sender restarts, after the receiver restarts', async () => {
  const w = world()
  const a = w.make('a', '10.0.0.1'); const b = w.make('b', '10.0.0.2')
  const spy = await w.tap('spy', '10.0.0.3')
  a.peers.set(b.info)
  a.peers.set({ ...b.info, nodeId: 'f'.repeat(32), address: '10.0.0.3' }) // the eavesdropper is "a peer" too, so it hears a copy
  await a.wire.start(); await b.wire.start()
  for (let i = 1; i <= 20; i++) a.wire.broadcast('NEED', need(i))
  await w.clock.advance(5)
  assert.is(b.got.length, 20)
  assert.is(spy.heard.length, 20)
  const captured = spy.heard.map((d) => Buffer.from(d.data))
  const replay = async (list: Buffer[]): Promise<void> => { for (const d of list) spy.socket.send(d, PORT, '10.0.0.2'); await w.clock.advance(5) }

  await replay(captured)
  assert.is(b.got.length, 20, 'replayed at once: all refused')
  const rnd = createSeededRandom(testSeed('replay shuffle'))
  const shuffled = [...captured].sort(() => rnd.float() - 0.5)
  await replay(shuffled)
  assert.is(b.got.length, 20, 'replayed out of order: all refused')
  assert.is(b.wire.stats.dropped.replay, 40)

  // The sender restarts (same flash): new messages are accepted, old ones still refused.
  await a.wire.stop()
  const a2 = w.make('a', '10.0.0.1', a.hal)
  await a2.wire.start()
  a2.wire.broadcast('NEED', need(100))
  await w.clock.advance(5)
  assert.is(b.got.length, 21, 'the restarted sender is heard')
  assert.ok(b.got[20]!.counter > captured.length, 'with a counter from a fresh block')
  await replay(captured)
  assert.is(b.got.length, 21)

  // The receiver restarts cleanly: its replay marks were saved, old messages stay refused.
  await b.wire.stop()
  const b2 = w.make('b', '10.0.0.2', b.hal)
  await b2.wire.start()
  await replay(captured)
  assert.is(b2.got.length, 0, 'captured before the restart: refused after it')
  a2.wire.broadcast('NEED', need(101))
  await w.clock.advance(5)
  assert.is(b2.got.length, 1)
})

test('after a receiver power cut, messages older than the last saved marks stay refused', async () => {
  const w = world()
  const a = w.make('a', '10.0.0.1'); const b = w.make('b', '10.0.0.2')
  const spy = await w.tap('spy', '10.0.0.3')
  a.peers.set(b.info); a.peers.set({ ...b.info, nodeId: 'f'.repeat(32), address: '10.0.0.3' })
  await a.wire.start(); await b.wire.start()
  for (let i = 1; i <= 5; i++) a.wire.broadcast('NEED', need(i))
  await w.clock.advance(REPLAY_PERSIST_MS + 10) // the periodic save happens
  const captured = spy.heard.map((d) => Buffer.from(d.data))
  b.host.kill() // power cut: no stop, nothing more saved
  const b2 = w.make('b2', '10.0.0.2', { ...b.hal, net: w.network.addHost('b-reborn', [{ nic: 'eth0', address: '10.0.0.12', prefixLength: 24 }]) } as SimHal)
  await b2.wire.start()
  for (const d of captured) spy.socket.send(d, PORT, '10.0.0.12')
  await w.clock.advance(5)
  assert.is(b2.got.length, 0)
  assert.is(b2.wire.stats.dropped.replay, 5)
})

test('legitimate reordering inside the window is accepted; beyond it refused', async () => {
  const w = world()
  const a = w.make('a', '10.0.0.1'); const b = w.make('b', '10.0.0.2')
  const spy = await w.tap('spy', '10.0.0.3')
  a.peers.set({ ...b.info, nodeId: 'f'.repeat(32), address: '10.0.0.3' }) // only the spy hears a, for now
  await a.wire.start(); await b.wire.start()
  const total = REPLAY_WINDOW_COUNT + 40
  for (let i = 1; i <= total; i++) a.wire.broadcast('NEED', need(i))
  await w.clock.advance(50)
  const captured = spy.heard.map((d) => Buffer.from(d.data))
  assert.is(captured.length, total)
  // Deliver the newest first, then the rest newest to oldest: only those inside the window get in.
  for (const d of [...captured].reverse()) spy.socket.send(d, PORT, '10.0.0.2')
  await w.clock.advance(50)
  assert.is(b.got.length, REPLAY_WINDOW_COUNT, `the newest ${REPLAY_WINDOW_COUNT} (the window)`)
  assert.is(b.wire.stats.dropped.replay, total - REPLAY_WINDOW_COUNT)
})

test('the rate gate bounds signature checks per source', async () => {
  const w = world()
  const a = w.make('a', '10.0.0.1'); const b = w.make('b', '10.0.0.2')
  const raw = await w.tap('raw', '10.0.0.9', 9999)
  await a.wire.start(); await b.wire.start()
  for (let i = 1; i <= WIRE_SOURCE_BURST_MAX + 100; i++) raw.socket.send(sealEnvelope('NEED', a.identity.publicKey, a.identity.privateKey, i, encodeBody('NEED', need(i))), PORT, '10.0.0.2')
  await w.clock.advance(2)
  assert.is(b.got.length, WIRE_SOURCE_BURST_MAX)
  assert.is(b.wire.stats.dropped.rate, 100)
})

test('sending is paced in bursts and the queue is bounded', async () => {
  const w = world()
  const a = w.make('a', '10.0.0.1')
  await a.wire.start()
  for (let i = 0; i < WIRE_SEND_QUEUE_COUNT_MAX + WIRE_SEND_BURST_COUNT_MAX + 10; i++) {
    a.peers.set({ ...a.info, nodeId: i.toString(16).padStart(32, '0'), address: `10.0.${(i >> 8) + 1}.${i & 255}` })
  }
  const { sent } = a.wire.broadcast('NEED', need(1))
  assert.is(sent.length, WIRE_SEND_QUEUE_COUNT_MAX + WIRE_SEND_BURST_COUNT_MAX, 'a burst leaves at once, the queue takes the rest')
  assert.is(a.wire.stats.datagramsOut, WIRE_SEND_BURST_COUNT_MAX)
  assert.is(a.wire.stats.dropped.queue_full, 10)
  await w.clock.advance(WIRE_SEND_TICK_MS)
  assert.is(a.wire.stats.datagramsOut, 2 * WIRE_SEND_BURST_COUNT_MAX, 'one more burst per tick')
  await w.clock.advance(50)
  assert.is(a.wire.queued, 0)
  assert.is(a.wire.stats.datagramsOut, sent.length)
})

test('a taken port falls back to an ephemeral one when allowed, and says so', async () => {
  const w = world()
  const a = w.make('a', '10.0.0.1')
  await a.host.udp({ port: PORT })
  await a.wire.start().then(() => assert.unreachable('the port is taken'), (err: Error & { code?: string }) => assert.is(err.code, 'ADDRESS_IN_USE'))
  const { logger, lines } = memoryLogger()
  const wire = createWireTransport({ hal: a.hal, identity: a.identity, peers: a.peers, log: logger, port: PORT, ephemeralIfTaken: true })
  await wire.start()
  assert.is.not(wire.port, PORT)
  assert.ok(lines.some((l) => l.level === 'warn' && /ephemeral/.test(String(l.msg))))
  await wire.stop()
})

test.run()
