// The responder as an attack surface (design.md: SSDP reflection amplifies
// ~30x): who gets an answer, how many, how big, and that nothing ever goes
// out on the WAN side. On a simulated gateway with a LAN and a WAN interface;
// spoofed sources are injected straight into the gateway's interface.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimClock, SimNetwork, createSimHal, simNic, type Datagram, type Net, type SimHal, type SimHost, type SimInterface, type UdpSocket } from '../../../src/hal'
import { SSDP_MULTICAST_TTL, SSDP_REPLIES_PER_SECOND_MAX, SSDP_REPLY_BYTES_MAX, SSDP_SOURCE_REPLIES_BURST } from '../../../src/limits'
import { silentLogger } from '../../../src/log'
import { formatSsdp } from '../../../src/protocol/ssdp/message'
import { buildSearch } from '../../../src/protocol/ssdp/messages'
import { CANOPY_DEVICE_TYPE, SSDP_GROUP, SSDP_PORT, nodeIdOfCanopyUsn } from '../../../src/protocol/ssdp/names'
import { parseSsdp } from '../../../src/protocol/ssdp/message'
import { createSsdp, type Ssdp } from '../../../src/protocol/ssdp/ssdp'
import { identityFor } from '../../helpers/sim-lan'
import { testSeed } from '../../helpers/seed'

interface Sent { from: string, iface: string, to: string, toPort: number, data: Buffer, at: number }

/** Every socket call the engine makes, for asserting where it binds, joins and what TTL it sets. */
function spyNet (net: Net, calls: string[]): Net {
  return {
    listen: (o, f) => net.listen(o, f),
    connect: (h, p, t) => net.connect(h, p, t),
    async udp (o) {
      const s = await net.udp(o)
      const name = `${o.address ?? '0.0.0.0'}:${o.port}`
      calls.push(`bind ${name}`)
      const spy: UdpSocket = {
        get port () { return s.port },
        get sendErrors () { return s.sendErrors },
        send: (d, p, a) => { s.send(d, p, a) },
        onMessage: (fn) => { s.onMessage(fn) },
        joinGroup: (g, i) => { calls.push(`join ${name} ${g} ${i}`); s.joinGroup(g, i) },
        leaveGroup: (g, i) => { calls.push(`leave ${name} ${g} ${i}`); s.leaveGroup(g, i) },
        setMulticastInterface: (i) => { calls.push(`mcast-if ${name} ${i}`); s.setMulticastInterface(i) },
        setMulticastTtl: (t) => { calls.push(`ttl ${name} ${t}`); s.setMulticastTtl(t) },
        close: () => { calls.push(`close ${name}`); s.close() }
      }
      return spy
    }
  }
}

interface Agent { host: SimHost, hal: SimHal, ssdp: Ssdp, nodeId: string, calls: string[] }

class Lab {
  readonly clock = new SimClock()
  readonly network: SimNetwork
  readonly sent: Sent[] = []

  constructor (seed: number) {
    this.network = new SimNetwork(this.clock, { seed, conditions: { latencyMs: 1 } })
    const original = this.network.sendDatagram.bind(this.network)
    this.network.sendDatagram = (from, fromIface, fromPort, data, to, toPort) => {
      this.sent.push({ from: from.name, iface: fromIface.nic, to, toPort, data: Buffer.from(data), at: this.clock.nowMs() })
      original(from, fromIface, fromPort, data, to, toPort)
    }
  }

  async agent (name: string, interfaces: SimInterface[], seed: number): Promise<Agent> {
    const host = this.network.addHost(name, interfaces)
    const hal = createSimHal({ seed, host })
    const calls: string[] = []
    const { nodeId } = identityFor(seed)
    const ssdp = createSsdp({
      clock: hal.clock, random: hal.random, nics: hal.nics, net: spyNet(hal.net, calls), log: silentLogger, nodeId,
      httpHost: '0.0.0.0', httpPort: 8787, maxAgeSeconds: 300, notifyIntervalMs: 60_000, server: 'Node.js/20 UPnP/1.1 Canopy/0.1.0', configId: () => 1
    })
    await ssdp.start()
    return { host, hal, ssdp, nodeId, calls }
  }

  /** Put a datagram on the agent's interface as if it came from `source` (spoofing included). */
  inject (a: Agent, nic: string, source: string, data: Buffer, sourcePort = 5000, dest = SSDP_GROUP): void {
    const iface = a.host.interfaces.find((i) => i.nic === nic)!
    a.host.deliverDatagram(iface, dest, SSDP_PORT, { data, address: source, port: sourcePort })
  }

  /** Unicast datagrams an agent sent (replies), optionally to one address. */
  replies (a: Agent, to?: string): Sent[] {
    return this.sent.filter((s) => s.from === a.host.name && s.to !== SSDP_GROUP && (to === undefined || s.to === to))
  }
}

const gatewayIfaces: SimInterface[] = [
  { nic: 'br-lan', address: '192.168.1.1', prefixLength: 24 },
  { nic: 'wan', address: '203.0.113.1', prefixLength: 24 }
]
const search = (st = 'ssdp:all', mx = '1'): Buffer => formatSsdp('search', [['HOST', '239.255.255.250:1900'], ['MAN', '"ssdp:discover"'], ['MX', mx], ['ST', st]])

test('sockets only on the LAN interface, TTL 2, and never a datagram on the WAN side', async () => {
  const lab = new Lab(1)
  const gw = await lab.agent('gw', gatewayIfaces, 1)
  assert.equal(gw.calls.filter((c) => c.startsWith('join')), [`join 0.0.0.0:1900 ${SSDP_GROUP} 192.168.1.1`])
  assert.ok(gw.calls.filter((c) => c.startsWith('ttl')).every((c) => c.endsWith(` ${SSDP_MULTICAST_TTL}`)))
  assert.ok(gw.calls.includes('bind 192.168.1.1:0'), 'the searcher is bound to the LAN address')
  assert.not.ok(gw.calls.some((c) => c.includes('203.0.113.1')), 'nothing bound, joined or set on the WAN address')

  // A WAN host searches by multicast on its segment and by unicast to the gateway's WAN address.
  const wanHost = lab.network.addHost('internet', [{ nic: 'eth0', address: '203.0.113.9', prefixLength: 24 }])
  const probe = await wanHost.udp({ port: 0 })
  const heard: Datagram[] = []
  probe.onMessage((d) => heard.push(d))
  probe.send(search(), SSDP_PORT, SSDP_GROUP)
  probe.send(search(), SSDP_PORT, '203.0.113.1')
  probe.send(search(CANOPY_DEVICE_TYPE), SSDP_PORT, '192.168.1.1') // routed to the LAN address from outside
  await lab.clock.advance(10_000)
  assert.is(heard.length, 0)
  assert.is(lab.sent.filter((s) => s.from === 'gw' && s.iface === 'wan').length, 0, 'nothing left through the WAN interface')
  assert.ok(gw.ssdp.stats.dropped['not-lan'] >= 2)
  await gw.ssdp.stop()
  assert.is(lab.sent.filter((s) => s.from === 'gw' && s.iface === 'wan').length, 0, 'not even the byebye')
  assert.ok(lab.sent.some((s) => s.from === 'gw' && s.iface === 'br-lan' && s.data.includes('ssdp:byebye')))
})

test('searches from public, loopback, broadcast, other-subnet and network-address sources get no reply', async () => {
  const lab = new Lab(2)
  const gw = await lab.agent('gw', gatewayIfaces, 2)
  const sources: Array<[string, string]> = [
    ['203.0.113.50', 'not-lan'], ['8.8.8.8', 'not-lan'], ['127.0.0.1', 'not-lan'], ['255.255.255.255', 'not-lan'],
    ['192.168.1.255', 'broadcast'], ['192.168.1.0', 'broadcast'], ['192.168.2.7', 'not-lan'], ['10.0.0.7', 'not-lan'],
    ['0.0.0.0', 'not-lan'], ['224.0.0.1', 'not-lan'], ['169.254.1.1', 'not-lan'], ['::1', 'not-lan'], ['fe80::1', 'not-lan']
  ]
  for (const [src] of sources) {
    lab.inject(gw, 'br-lan', src, search()) // to the group on the LAN
    lab.inject(gw, 'wan', src, search(), 5000, '203.0.113.1') // unicast to the WAN address (no membership there for multicast)
  }
  lab.inject(gw, 'br-lan', '192.168.1.50', search(), 0) // port 0 cannot be answered
  await lab.clock.advance(10_000)
  assert.is(lab.replies(gw).length, 0, JSON.stringify(lab.replies(gw).map((r) => r.to)))
  assert.is(gw.ssdp.stats.dropped.broadcast, 4)
  assert.is(gw.ssdp.stats.dropped['not-lan'], (sources.length - 2) * 2)
  assert.is(gw.ssdp.stats.dropped['bad-port'], 1)
  // The control: a LAN source is answered, once.
  lab.inject(gw, 'br-lan', '192.168.1.50', search())
  await lab.clock.advance(2_000)
  assert.is(lab.replies(gw, '192.168.1.50').length, 1)
  await gw.ssdp.stop()
})

test('MAN must be "ssdp:discover", MX missing gets nothing, MX over 5 waits at most 5 s, the delay is random in [0, MX]', async () => {
  const lab = new Lab(3)
  const gw = await lab.agent('gw', gatewayIfaces, 3)
  lab.inject(gw, 'br-lan', '192.168.1.60', formatSsdp('search', [['HOST', '239.255.255.250:1900'], ['MAN', 'ssdp:discover'], ['MX', '1'], ['ST', 'ssdp:all']]))
  lab.inject(gw, 'br-lan', '192.168.1.61', formatSsdp('search', [['HOST', '239.255.255.250:1900'], ['MAN', '"ssdp:discover"'], ['ST', 'ssdp:all']]))
  await lab.clock.advance(10_000)
  assert.is(lab.replies(gw).length, 0)
  assert.is(gw.ssdp.stats.dropped['bad-man'], 1)
  assert.is(gw.ssdp.stats.dropped['no-mx'], 1)

  const t0 = lab.clock.nowMs()
  for (let i = 0; i < 15; i++) lab.inject(gw, 'br-lan', `192.168.1.${100 + i}`, search('ssdp:all', '120'))
  await lab.clock.advance(6_000)
  const delays = lab.replies(gw).map((r) => r.at - t0)
  assert.is(delays.length, 15, 'each answered once')
  assert.ok(Math.max(...delays) <= 5_000, `MX 120 counts as 5 s: ${Math.max(...delays)} ms`)
  assert.ok(Math.max(...delays) - Math.min(...delays) >= 1_000, `random delays spread over [0, 5 s]: ${delays.join(' ')}`)
  await gw.ssdp.stop()
})

test('a flood of searches from one source gets its burst of 3, then 1 reply per second', async () => {
  const lab = new Lab(4)
  const gw = await lab.agent('gw', gatewayIfaces, 4)
  const seconds = 10
  for (let ms = 0; ms < seconds * 1000; ms += 10) {
    for (let k = 0; k < 10; k++) lab.inject(gw, 'br-lan', '192.168.1.66', search(CANOPY_DEVICE_TYPE, '1'))
    await lab.clock.advance(10)
  }
  await lab.clock.advance(2_000)
  const n = lab.replies(gw, '192.168.1.66').length
  assert.ok(n <= SSDP_SOURCE_REPLIES_BURST + seconds, `${n} replies to 10 000 searches in ${seconds} s`)
  assert.ok(n >= seconds, 'still answered, slowly')
  assert.is(gw.ssdp.stats.repliesRateLimited, seconds * 1000 - n)
  assert.ok(gw.ssdp.pending === 0)
  await gw.ssdp.stop()
})

test('a flood from many (spoofed) LAN sources gets at most 20 replies per second in all', async () => {
  const lab = new Lab(5)
  const gw = await lab.agent('gw', gatewayIfaces, 5)
  const seconds = 10
  let i = 0
  for (let ms = 0; ms < seconds * 1000; ms += 10) {
    for (let k = 0; k < 10; k++) lab.inject(gw, 'br-lan', `192.168.1.${2 + (i++ % 250)}`, search('ssdp:all', '1'))
    await lab.clock.advance(10)
  }
  await lab.clock.advance(2_000)
  const replies = lab.replies(gw)
  assert.ok(replies.length <= SSDP_REPLIES_PER_SECOND_MAX * (seconds + 1), `${replies.length} replies in ${seconds} s`)
  // Per second of sending time (a reply waits at most MX = 1 s after its search).
  const perSecond = new Map<number, number>()
  for (const r of replies) perSecond.set(Math.floor(r.at / 1000), (perSecond.get(Math.floor(r.at / 1000)) ?? 0) + 1)
  assert.ok([...perSecond.values()].every((v) => v <= 2 * SSDP_REPLIES_PER_SECOND_MAX), JSON.stringify([...perSecond]))
  await gw.ssdp.stop()
})

test('ssdp:all on a real LAN segment: one reply per agent, each within 3x the search and 512 bytes', async () => {
  const seed = testSeed('ssdp:all')
  const lab = new Lab(seed)
  const agents = []
  for (let i = 0; i < 4; i++) agents.push(await lab.agent(`a${i}`, [{ nic: 'eth0', address: `192.168.1.${20 + i}`, prefixLength: 24 }], seed * 10 + i))
  const client = lab.network.addHost('client', [{ nic: 'eth0', address: '192.168.1.200', prefixLength: 24 }])
  const sock = await client.udp({ port: 0 })
  const got: Datagram[] = []
  sock.onMessage((d) => got.push(d))
  await lab.clock.advance(5_000) // start-up chatter over
  for (const [req, label] of [[search('ssdp:all', '3'), 'ssdp:all'], [buildSearch(CANOPY_DEVICE_TYPE, 2), 'our type'], [search('upnp:rootdevice', '2'), 'rootdevice']] as const) {
    got.length = 0
    sock.send(req, SSDP_PORT, SSDP_GROUP)
    await lab.clock.advance(4_000)
    assert.is(got.length, agents.length, `${label}: one reply per agent`)
    const ids = new Set(got.map((d) => parseSsdp(d.data).headers.get('usn')!.slice(5, 41)))
    assert.is(ids.size, agents.length, 'from each agent once')
    for (const d of got) {
      assert.ok(d.data.length <= Math.min(3 * req.length, SSDP_REPLY_BYTES_MAX), `${label}: ${d.data.length} bytes for a ${req.length}-byte search`)
      if (label !== 'rootdevice') assert.ok(nodeIdOfCanopyUsn(parseSsdp(d.data).headers.get('usn')!) !== null)
    }
  }
  // A search for another device type gets nothing.
  got.length = 0
  sock.send(search('urn:schemas-upnp-org:device:MediaRenderer:1', '1'), SSDP_PORT, SSDP_GROUP)
  await lab.clock.advance(3_000)
  assert.is(got.length, 0)
  // The smallest legal search: a reply that cannot fit in 3x is not sent at all.
  const tiny = Buffer.from('M-SEARCH * HTTP/1.1\r\nHOST:x\r\nMAN:"ssdp:discover"\r\nMX:1\r\nST:ssdp:all\r\n\r\n')
  got.length = 0
  sock.send(tiny, SSDP_PORT, SSDP_GROUP)
  await lab.clock.advance(3_000)
  for (const d of got) assert.ok(d.data.length <= 3 * tiny.length)
  const tooLarge = agents.reduce((n, a) => n + a.ssdp.stats.dropped['reply-too-large'], 0)
  assert.is(got.length + tooLarge, agents.length, `${got.length} replied within ${3 * tiny.length} bytes, ${tooLarge} stayed silent`)
  for (const a of agents) await a.ssdp.stop()
})

test('interfaces coming and going: sockets follow them; a LAN interface turned down or gone is closed', async () => {
  const lab = new Lab(6)
  const host = lab.network.addHost('box', [{ nic: 'br-lan', address: '192.168.1.1', prefixLength: 24 }, { nic: 'lan2', address: '192.168.2.1', prefixLength: 24 }])
  const hal = createSimHal({ seed: 6, host, nics: [simNic('br-lan', [['192.168.1.1', 24]])] })
  const calls: string[] = []
  const ssdp = createSsdp({
    clock: hal.clock, random: hal.random, nics: hal.nics, net: spyNet(hal.net, calls), log: silentLogger, nodeId: identityFor(6).nodeId,
    httpHost: '0.0.0.0', httpPort: 8787, maxAgeSeconds: 300, notifyIntervalMs: 60_000, server: 's', configId: () => 1
  })
  await ssdp.start()
  assert.equal(ssdp.interfaces().map((i) => i.nic), ['br-lan'])
  hal.nics.set([simNic('br-lan', [['192.168.1.1', 24]]), simNic('lan2', [['192.168.2.1', 24]])])
  await lab.clock.advance(10)
  assert.equal(ssdp.interfaces().map((i) => i.nic), ['br-lan', 'lan2'])
  assert.ok(calls.includes(`join 0.0.0.0:1900 ${SSDP_GROUP} 192.168.2.1`))
  assert.ok(lab.sent.some((s) => s.from === 'box' && s.iface === 'lan2' && s.data.includes('ssdp:alive')), 'announced on the new interface at once')
  // Each interface answers only its own sources, whichever socket hears the datagram.
  const box = { host, hal, ssdp, nodeId: '', calls }
  lab.inject(box, 'br-lan', '192.168.2.50', search())
  lab.inject(box, 'lan2', '192.168.2.51', search())
  await lab.clock.advance(2_000)
  assert.is(ssdp.stats.dropped['other-interface'], 1)
  assert.equal(lab.replies(box).map((r) => `${r.iface}>${r.to}`), ['lan2>192.168.2.51'])
  hal.nics.set([simNic('br-lan', [['192.168.1.1', 24]]), simNic('lan2', [['192.168.2.1', 24]], { up: false })])
  await lab.clock.advance(10)
  assert.equal(ssdp.interfaces().map((i) => i.nic), ['br-lan'])
  assert.ok(calls.includes('close 0.0.0.0:1900') && calls.includes(`leave 0.0.0.0:1900 ${SSDP_GROUP} 192.168.2.1`))
  hal.nics.set([])
  await lab.clock.advance(10)
  assert.equal(ssdp.interfaces(), [])
  await ssdp.stop()
})

test('port 1900 taken without SO_REUSEADDR: start neither hangs nor throws, and the interface is retried with backoff', async () => {
  const lab = new Lab(8)
  const host = lab.network.addHost('box', [{ nic: 'br-lan', address: '192.168.1.1', prefixLength: 24 }])
  const squatter = await host.udp({ port: SSDP_PORT })
  const hal = createSimHal({ seed: 8, host })
  const ssdp = createSsdp({
    clock: hal.clock, random: hal.random, nics: hal.nics, net: hal.net, log: silentLogger, nodeId: identityFor(8).nodeId,
    httpHost: '0.0.0.0', httpPort: 8787, maxAgeSeconds: 300, notifyIntervalMs: 60_000, server: 's', configId: () => 1
  })
  await ssdp.start()
  assert.equal(ssdp.interfaces(), [])
  assert.is(ssdp.stats.interfaceErrors, 1)
  await lab.clock.advance(5_000 + 10_000 + 20_000)
  assert.is(ssdp.stats.interfaceErrors, 4, 'retried after 5, 10 and 20 s')
  squatter.close()
  await lab.clock.advance(40_000)
  assert.equal(ssdp.interfaces().map((i) => i.nic), ['br-lan'], 'up once the port is free')
  assert.is(ssdp.stats.interfaceErrors, 4)
  await ssdp.stop()
})

test('an HTTP server on loopback or on one address limits where SSDP runs (LOCATION must be reachable)', async () => {
  const lab = new Lab(7)
  const host = lab.network.addHost('box', [{ nic: 'br-lan', address: '192.168.1.1', prefixLength: 24 }, { nic: 'lan2', address: '192.168.2.1', prefixLength: 24 }])
  const hal = createSimHal({ seed: 7, host })
  const make = (httpHost: string) => createSsdp({
    clock: hal.clock, random: hal.random, nics: hal.nics, net: hal.net, log: silentLogger, nodeId: identityFor(7).nodeId,
    httpHost, httpPort: 8787, maxAgeSeconds: 300, notifyIntervalMs: 60_000, server: 's', configId: () => 1
  })
  assert.equal(make('127.0.0.1').eligible(), [])
  assert.equal(make('192.168.2.1').eligible().map((i) => i.nic), ['lan2'])
  assert.equal(make('0.0.0.0').eligible().map((i) => i.nic), ['br-lan', 'lan2'])
  assert.equal(make('::').eligible().map((i) => i.nic), ['br-lan', 'lan2'])
})

test.run()
