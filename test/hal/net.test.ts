// One contract for both network twins, then the simulated network's own
// behaviour (delay, loss, duplication, reordering, partitions, dead hosts,
// uplink rates), which the protocol simulations rely on.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../src/errors'
import { SimClock, SimNetwork, createLinuxNet, type Net, type StreamSocket, type Datagram } from '../../src/hal'
import { testSeed } from '../helpers/seed'

interface Pair { a: Net, b: Net, bAddress: string, wait (ms: number): Promise<void> }

function linuxPair (): Pair {
  const net = createLinuxNet()
  return { a: net, b: net, bAddress: '127.0.0.1', wait: (ms) => new Promise((r) => setTimeout(r, ms)) }
}

function simPair (): Pair {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed: 1, conditions: { latencyMs: 2 } })
  const a = network.addHost('a', [{ nic: 'eth0', address: '10.0.0.1', prefixLength: 24 }])
  const b = network.addHost('b', [{ nic: 'eth0', address: '10.0.0.2', prefixLength: 24 }])
  return { a, b, bAddress: '10.0.0.2', wait: (ms) => clock.advance(ms) }
}

const read = (s: StreamSocket): { text: () => string, ended: () => boolean } => {
  let text = ''
  let ended = false
  s.on('data', (c: Buffer) => { text += c.toString() })
  s.on('end', () => { ended = true })
  s.on('error', () => {})
  return { text: () => text, ended: () => ended }
}

for (const [name, make] of [['linux', linuxPair], ['sim', simPair]] as const) {
  test(`${name}: UDP unicast both ways`, async () => {
    const p = make()
    const sa = await p.a.udp({ port: 0, address: name === 'linux' ? '127.0.0.1' : undefined })
    const sb = await p.b.udp({ port: 0, address: name === 'linux' ? '127.0.0.1' : undefined })
    const got: Datagram[] = []
    sb.onMessage((d) => { got.push(d); sb.send(Buffer.from('pong'), d.port, d.address) })
    const back: Datagram[] = []
    sa.onMessage((d) => back.push(d))
    sa.send(Buffer.from('ping'), sb.port, p.bAddress)
    for (let i = 0; i < 50 && back.length === 0; i++) await p.wait(10)
    assert.is(got[0]?.data.toString(), 'ping')
    assert.is(got[0]?.port, sa.port)
    assert.is(back[0]?.data.toString(), 'pong')
    sa.close(); sb.close()
  })

  test(`${name}: TCP connect, exchange, end, and refused`, async () => {
    const p = make()
    let server: ReturnType<typeof read> | null = null
    const srv = await p.b.listen({ port: 0, host: name === 'linux' ? '127.0.0.1' : undefined }, (s) => {
      server = read(s)
      s.write('hello')
      s.end()
    })
    const connecting = p.a.connect(p.bAddress, srv.port, 1000)
    await p.wait(20)
    const c = await connecting
    const client = read(c)
    c.write('hi there')
    for (let i = 0; i < 50 && !client.ended(); i++) await p.wait(10)
    assert.is(client.text(), 'hello')
    assert.ok(client.ended(), 'the server end reaches the client')
    assert.is(server!.text(), 'hi there')
    c.destroy()
    await srv.close()
    const pending = p.a.connect(p.bAddress, srv.port, 1000).then(() => 'connected', (err: CanopyError) => err.code)
    await p.wait(20)
    assert.is(await pending, 'NET_REFUSED')
  })
}

function lan (seed: number, conditions = {}) {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed, conditions: { latencyMs: 5, ...conditions } })
  const hosts = Array.from({ length: 4 }, (_, i) => network.addHost(`h${i}`, [{ nic: 'eth0', address: `192.168.1.${i + 1}`, prefixLength: 24 }]))
  return { clock, network, hosts }
}

test('sim: multicast reaches members on the same subnet only, after the latency', async () => {
  const { clock, network, hosts } = lan(1)
  const other = network.addHost('far', [{ nic: 'eth0', address: '10.9.0.1', prefixLength: 24 }])
  const heard: string[] = []
  for (const h of [...hosts, other]) {
    const s = await h.udp({ port: 1900, reuseAddr: true })
    if (h.name !== 'h3') s.joinGroup('239.255.255.250', h.interfaces[0]!.address)
    s.onMessage(() => heard.push(h.name))
  }
  const sender = await hosts[0]!.udp({ port: 0 })
  sender.send(Buffer.from('NOTIFY'), 1900, '239.255.255.250')
  await clock.advance(4)
  assert.equal(heard.sort(), ['h0'], "the sender's own member socket hears it at once (multicast loopback); others wait the latency")
  await clock.advance(1)
  assert.equal(heard.sort(), ['h0', 'h1', 'h2'], 'members on 192.168.1.0/24, not h3 (no membership) nor far (other subnet)')
})

test('sim: loss and duplication happen at their rates, deterministically per seed', async () => {
  const seed = testSeed('sim loss')
  const run = async (): Promise<number> => {
    const { clock, hosts } = lan(seed, { loss: 0.2, duplicate: 0.1 })
    const rx = await hosts[1]!.udp({ port: 9 })
    let n = 0
    rx.onMessage(() => { n++ })
    const tx = await hosts[0]!.udp({ port: 0 })
    for (let i = 0; i < 2000; i++) tx.send(Buffer.from([i & 255]), 9, '192.168.1.2')
    await clock.advance(100)
    return n
  }
  const a = await run()
  assert.is(await run(), a, 'same seed, same outcome')
  const expected = 2000 * 0.8 * 1.1
  assert.ok(Math.abs(a - expected) < 120, `delivered ${a}, expected about ${expected}`)
})

test('sim: jitter reorders datagrams', async () => {
  const { clock, hosts } = lan(3, { jitterMs: 20 })
  const rx = await hosts[1]!.udp({ port: 9 })
  const order: number[] = []
  rx.onMessage((d) => order.push(d.data[0]!))
  const tx = await hosts[0]!.udp({ port: 0 })
  for (let i = 0; i < 50; i++) tx.send(Buffer.from([i]), 9, '192.168.1.2')
  await clock.advance(100)
  assert.is(order.length, 50)
  assert.not.equal(order, [...order].sort((x, y) => x - y), 'arrival order differs from send order')
})

test('sim: a partition blocks both datagrams and new connections until healed', async () => {
  const { clock, network, hosts } = lan(4)
  const rx = await hosts[1]!.udp({ port: 9 })
  let n = 0
  rx.onMessage(() => { n++ })
  const tx = await hosts[0]!.udp({ port: 0 })
  network.partition([[hosts[0]!], [hosts[1]!]])
  tx.send(Buffer.from('x'), 9, '192.168.1.2')
  await clock.advance(20)
  assert.is(n, 0)
  await hosts[1]!.listen({ port: 80 }, () => {})
  const attempt = hosts[0]!.connect('192.168.1.2', 80, 100).then(() => 'connected', (e: CanopyError) => e.code)
  await clock.advance(150)
  assert.is(await attempt, 'TIMEOUT')
  network.partition(null)
  tx.send(Buffer.from('x'), 9, '192.168.1.2')
  await clock.advance(20)
  assert.is(n, 1)
})

test('sim: a killed host vanishes without a FIN; a closed socket sends one', async () => {
  const { clock, hosts } = lan(5)
  const ends: string[] = []
  await hosts[1]!.listen({ port: 80 }, (s) => { s.on('end', () => ends.push('server saw end')); s.on('error', () => {}); s.resume() })
  const c1 = hosts[0]!.connect('192.168.1.2', 80, 100)
  await clock.advance(20)
  const s1 = await c1
  s1.on('error', () => {})
  s1.destroy()
  await clock.advance(20)
  assert.equal(ends, ['server saw end'])
  const c2 = hosts[2]!.connect('192.168.1.2', 80, 100)
  await clock.advance(20)
  const s2 = await c2
  s2.on('error', () => {})
  hosts[2]!.kill()
  await clock.advance(100)
  assert.equal(ends, ['server saw end'], 'no FIN from a dead host')
})

test('sim: the uplink rate paces stream throughput and gives backpressure', async () => {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed: 6, conditions: { latencyMs: 1 } })
  const a = network.addHost('a', [{ nic: 'eth0', address: '10.0.0.1', prefixLength: 24 }], { uplinkBytesPerSec: 1_000_000 })
  const b = network.addHost('b', [{ nic: 'eth0', address: '10.0.0.2', prefixLength: 24 }])
  let received = 0
  await b.listen({ port: 1 }, (s) => { s.on('data', (c: Buffer) => { received += c.length }) })
  const pending = a.connect('10.0.0.2', 1, 100)
  await clock.advance(5)
  const s = await pending
  const chunk = Buffer.alloc(10_000)
  let writesAccepted = 0
  for (let i = 0; i < 100; i++) if (s.write(chunk)) writesAccepted++
  assert.ok(writesAccepted < 100, 'write() returns false when the uplink is behind')
  await clock.advance(500)
  assert.ok(Math.abs(received - 500_000) <= 20_000, `about 1 MB/s: received ${received} bytes in 0.5 s`)
  await clock.advance(600)
  assert.is(received, 1_000_000)
})

test.run()
