import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimNics, simNic } from '../../../src/hal'
import { checkSource, isSubnetEdge } from '../../../src/protocol/ssdp/source'

test('network and broadcast addresses of a prefix; none for /31 and /32', () => {
  assert.ok(isSubnetEdge('192.168.1.0', '192.168.1.1', 24))
  assert.ok(isSubnetEdge('192.168.1.255', '192.168.1.1', 24))
  assert.not.ok(isSubnetEdge('192.168.1.254', '192.168.1.1', 24))
  assert.ok(isSubnetEdge('10.255.255.255', '10.0.0.1', 8))
  assert.ok(isSubnetEdge('172.16.0.7', '172.16.0.5', 30))
  assert.not.ok(isSubnetEdge('172.16.0.6', '172.16.0.5', 30))
  assert.not.ok(isSubnetEdge('10.0.0.0', '10.0.0.1', 31))
  assert.not.ok(isSubnetEdge('192.168.2.255', '192.168.1.1', 24), 'another prefix is not this one\'s edge')
  assert.not.ok(isSubnetEdge('fe80::ffff', 'fe80::1', 64), 'IPv6 has no broadcast')
})

test('a source belongs to the LAN interface whose prefix holds it, whichever socket heard it', () => {
  const nics = new SimNics([simNic('br-lan', [['192.168.1.1', 24]]), simNic('guest', [['192.168.5.1', 24]]), simNic('wan', [['198.51.100.2', 24]])]).list()
  const lan = { nic: 'br-lan', address: '192.168.1.1', prefixLength: 24 }
  const d = (address: string, port = 40000) => ({ data: Buffer.alloc(0), address, port })
  assert.is(checkSource(nics, d('192.168.1.20'), lan), null)
  assert.is(checkSource(nics, d('192.168.5.20'), lan), 'other-interface')
  assert.is(checkSource(nics, d('198.51.100.9'), lan), 'not-lan', 'the WAN prefix is not a LAN prefix')
  assert.is(checkSource(nics, d('127.0.0.1'), lan), 'not-lan')
  assert.is(checkSource(nics, d('192.168.1.255'), lan), 'broadcast')
  assert.is(checkSource(nics, d('192.168.1.20', 0), lan), 'bad-port')
  assert.is(checkSource(nics, d('not an address'), lan), 'not-lan')
})

test.run()
