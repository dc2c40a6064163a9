import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LinuxNics, SimNics, createRealClock, decideRole, lanNicFor, simNic, type NicEvent, type Nics, type RawNic } from '../../src/hal'
import { NicTable } from '../../src/hal/nic'

const roleOf = (raw: RawNic, lan: string[] = [], wan: string[] = []): string => {
  const t = NicTable({ lan, wan })
  t.update([raw])
  return t.get(raw.name)!.role
}

test('roles from addresses', () => {
  assert.is(roleOf(simNic('br-lan', [['192.168.1.1', 24], ['fe80::1', 64]])), 'lan')
  assert.is(roleOf(simNic('eth0', [['10.0.0.5', 8]])), 'lan')
  assert.is(roleOf(simNic('wan', [['203.0.113.9', 24]])), 'wan')
  assert.is(roleOf(simNic('wwan', [['100.70.1.2', 10]])), 'wan', 'CGNAT is WAN')
  assert.is(roleOf(simNic('mixed', [['192.168.1.2', 24], ['8.8.8.8', 32]])), 'wan', 'any public IPv4 makes it WAN')
  assert.is(roleOf(simNic('stb', [['192.168.1.20', 24], ['2001:db8:1::20', 64]])), 'lan', 'an IPv6 GUA beside private IPv4 stays LAN (prefix delegation)')
  assert.is(roleOf(simNic('v6only', [['fd00::3', 64], ['fe80::3', 64]])), 'lan')
  assert.is(roleOf(simNic('v6wan', [['2001:db8::3', 64]])), 'wan')
  assert.is(roleOf(simNic('empty', [])), 'none')
  assert.is(roleOf(simNic('lo', [['127.0.0.1', 8]], { loopback: true })), 'loopback')
})

test('roles from config win; naming LAN interfaces excludes the others', () => {
  const nic = simNic('eth1', [['203.0.113.9', 24]])
  assert.is(roleOf(nic, ['eth1']), 'lan', 'a vendor may name any port LAN')
  assert.is(roleOf(simNic('eth0', [['192.168.1.1', 24]]), [], ['eth0']), 'wan', 'a vendor names its WAN port')
  assert.is(roleOf(simNic('eth2', [['192.168.5.1', 24]]), ['eth1']), 'none', 'with --lan given, other private interfaces are not LAN')
  assert.is(decideRole({ ...simNic('x', []), addresses: [] }, { lan: [], wan: [] }), 'none')
})

test('events: add, change, remove', () => {
  const nics = new SimNics([simNic('eth0', [['192.168.1.2', 24]])])
  const events: NicEvent[] = []
  const off = nics.on((e) => events.push(e))
  nics.set([simNic('eth0', [['192.168.1.2', 24]]), simNic('eth1', [['10.0.0.1', 8]])])
  nics.set([simNic('eth0', [['192.168.1.3', 24]]), simNic('eth1', [['10.0.0.1', 8]])])
  nics.set([simNic('eth0', [['192.168.1.3', 24]])])
  nics.set([simNic('eth0', [['192.168.1.3', 24]])])
  assert.equal(events.map((e) => `${e.type}:${e.nic.name}`), ['add:eth1', 'change:eth0', 'remove:eth1'])
  assert.is(events[1]!.previous!.addresses[0]!.address, '192.168.1.2')
  off()
  nics.set([])
  assert.is(events.length, 3, 'unsubscribed listeners hear nothing')
})

test('lanNicFor matches sources inside an up LAN interface prefix only', () => {
  const nics = new SimNics([
    simNic('br-lan', [['192.168.1.1', 24], ['fd00:1::1', 64]]),
    simNic('wan', [['203.0.113.9', 24]]),
    simNic('guest', [['192.168.9.1', 24]], { up: false })
  ]).list()
  assert.is(lanNicFor(nics, '192.168.1.77')?.name, 'br-lan')
  assert.is(lanNicFor(nics, '::ffff:192.168.1.77')?.name, 'br-lan')
  assert.is(lanNicFor(nics, 'fd00:1::99')?.name, 'br-lan')
  assert.is(lanNicFor(nics, '203.0.113.50'), undefined, 'WAN-side neighbours are not LAN')
  assert.is(lanNicFor(nics, '192.168.9.5'), undefined, 'a down interface serves nobody')
  assert.is(lanNicFor(nics, '8.8.8.8'), undefined)
  assert.is(lanNicFor(nics, 'garbage'), undefined)
})

// Contract: both twins list, look up and refresh the same way.
async function contract (nics: Nics): Promise<void> {
  const list = nics.list()
  assert.ok(list.length >= 1)
  for (const n of list) {
    assert.is(nics.get(n.name)?.name, n.name)
    assert.ok(['lan', 'wan', 'loopback', 'none'].includes(n.role))
    for (const a of n.addresses) assert.ok(a.prefixLength >= 0 && a.prefixLength <= (a.family === 4 ? 32 : 128))
  }
  const events: NicEvent[] = []
  nics.on((e) => events.push(e))
  await nics.refresh()
  assert.is(events.length, 0, 'an unchanged system gives no events')
  nics.close()
}

test('contract: simulated interfaces', async () => {
  await contract(new SimNics([simNic('lo', [['127.0.0.1', 8]], { loopback: true }), simNic('eth0', [['192.168.1.2', 24]])]))
})

test('contract: Linux interfaces (this machine has a loopback)', async () => {
  const nics = await LinuxNics.open(createRealClock(), { lan: [], wan: [] }, 60_000)
  const lo = nics.list().find((n) => n.loopback)
  assert.ok(lo !== undefined, 'loopback found')
  assert.is(lo.role, 'loopback')
  assert.ok(lo.addresses.some((a) => a.address === '127.0.0.1' && a.prefixLength === 8))
  await contract(nics)
})

test.run()
