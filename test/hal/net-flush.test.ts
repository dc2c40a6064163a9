// UdpSocket.flush(): a datagram sent right before close() still leaves, on
// both twins (discovery's byebye depends on it).

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimClock, SimNetwork, createLinuxNet, type Datagram } from '../../src/hal'

test('linux: send, flush, close: the datagram arrives', async () => {
  const net = createLinuxNet()
  const rx = await net.udp({ port: 0, address: '127.0.0.1' })
  const got: Datagram[] = []
  rx.onMessage((d) => got.push(d))
  const tx = await net.udp({ port: 0, address: '127.0.0.1' })
  for (let i = 0; i < 5; i++) tx.send(Buffer.from(`bye ${i}`), rx.port, '127.0.0.1')
  await tx.flush!()
  tx.close()
  for (let i = 0; i < 100 && got.length < 5; i++) await new Promise((r) => setTimeout(r, 10))
  assert.equal(got.map((d) => d.data.toString()), ['bye 0', 'bye 1', 'bye 2', 'bye 3', 'bye 4'])
  assert.is(tx.sendErrors, 0)
  await tx.flush!() // nothing pending: resolves at once
  rx.close()
})

test('sim: flush resolves at once; what was sent is on the network', async () => {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed: 1 })
  const a = network.addHost('a', [{ nic: 'eth0', address: '10.0.0.1', prefixLength: 24 }])
  const b = network.addHost('b', [{ nic: 'eth0', address: '10.0.0.2', prefixLength: 24 }])
  const rx = await b.udp({ port: 9 })
  let n = 0
  rx.onMessage(() => { n++ })
  const tx = await a.udp({ port: 0 })
  tx.send(Buffer.from('bye'), 9, '10.0.0.2')
  await tx.flush!()
  tx.close()
  await clock.advance(10)
  assert.is(n, 1)
})

test.run()
