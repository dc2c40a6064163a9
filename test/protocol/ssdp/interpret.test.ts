import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SSDP_DATAGRAM_BYTES_MAX } from '../../../src/limits'
import { formatSsdp } from '../../../src/protocol/ssdp/message'
import { buildAlive, buildByebye, buildReply, buildSearch, replyBudget, type Advert } from '../../../src/protocol/ssdp/messages'
import { interpretSsdp } from '../../../src/protocol/ssdp/interpret'
import { CANOPY_DEVICE_TYPE } from '../../../src/protocol/ssdp/names'
import { identityFor } from '../../helpers/sim-lan'

const { nodeId } = identityFor(3)
const advert: Advert = { nodeId, location: 'http://192.168.1.2:8787/api/describe', maxAgeSeconds: 300, server: 'Node.js/20 UPnP/1.1 Canopy/0.1.0', bootId: 7, configId: 9 }
const location = { host: '192.168.1.2', port: 8787, path: '/api/describe' }

test('our own datagrams mean what we meant', () => {
  assert.equal(interpretSsdp(buildAlive(advert)), { type: 'alive', nodeId, location, maxAgeSeconds: 300, via: 'notify', bootId: 7, configId: 9 })
  assert.equal(interpretSsdp(buildByebye(nodeId)), { type: 'byebye', nodeId })
  assert.equal(interpretSsdp(buildSearch(CANOPY_DEVICE_TYPE, 1)), { type: 'search', st: CANOPY_DEVICE_TYPE, mxSeconds: 1 })
  assert.equal(interpretSsdp(buildReply(CANOPY_DEVICE_TYPE, advert, 512)!), { type: 'alive', nodeId, location, maxAgeSeconds: 300, via: 'reply', bootId: 7, configId: 9 })
})

test('searches: MAN exactly "ssdp:discover", MX present and numeric (capped at 5), ST and HOST present', () => {
  const search = (h: Array<[string, string]>) => interpretSsdp(formatSsdp('search', h))
  const base: Array<[string, string]> = [['HOST', '239.255.255.250:1900'], ['MAN', '"ssdp:discover"'], ['MX', '2'], ['ST', 'ssdp:all']]
  const without = (name: string) => base.filter(([n]) => n !== name)
  const withValue = (name: string, v: string) => base.map(([n, x]) => [n, n === name ? v : x] as [string, string])
  assert.equal(search(base), { type: 'search', st: 'ssdp:all', mxSeconds: 2 })
  assert.equal(search(withValue('MX', '60')), { type: 'search', st: 'ssdp:all', mxSeconds: 5 })
  assert.equal(search(without('MX')), { type: 'drop', reason: 'no-mx' })
  assert.equal(search(withValue('MX', 'soon')), { type: 'drop', reason: 'bad-mx' })
  assert.equal(search(without('MAN')), { type: 'drop', reason: 'bad-man' })
  assert.equal(search(withValue('MAN', 'ssdp:discover')), { type: 'drop', reason: 'bad-man' }, 'unquoted')
  assert.equal(search(without('ST')), { type: 'drop', reason: 'no-st' })
  assert.equal(search(without('HOST')), { type: 'drop', reason: 'malformed' })
})

test('announcements of other devices are not ours; Canopy ones need a USN with a node id, a fetchable LOCATION and a max-age', () => {
  const notify = (h: Array<[string, string]>) => interpretSsdp(formatSsdp('notify', h))
  const usn = `uuid:${nodeId.slice(0, 8)}-${nodeId.slice(8, 12)}-${nodeId.slice(12, 16)}-${nodeId.slice(16, 20)}-${nodeId.slice(20)}::${CANOPY_DEVICE_TYPE}`
  const ok: Array<[string, string]> = [['NT', CANOPY_DEVICE_TYPE], ['NTS', 'ssdp:alive'], ['USN', usn], ['LOCATION', 'http://10.0.0.2:80/d'], ['CACHE-CONTROL', 'max-age=60']]
  const set = (name: string, v: string | null) => ok.flatMap(([n, x]) => n !== name ? [[n, x] as [string, string]] : v === null ? [] : [[n, v] as [string, string]])
  assert.is(notify(ok).type, 'alive')
  assert.equal(notify(set('NT', 'upnp:rootdevice')), { type: 'drop', reason: 'not-ours' })
  assert.equal(notify(set('USN', 'uuid:abc::urn:canopy:device:agent:1')), { type: 'drop', reason: 'bad-usn' })
  assert.equal(notify(set('LOCATION', 'http://printer.lan/d')), { type: 'drop', reason: 'bad-location' })
  assert.equal(notify(set('CACHE-CONTROL', null)), { type: 'drop', reason: 'bad-max-age' })
  assert.equal(notify(set('NTS', 'ssdp:propchange')), { type: 'drop', reason: 'malformed' })
  assert.equal(notify(set('NTS', 'ssdp:byebye')), { type: 'byebye', nodeId }, 'byebye needs no LOCATION')
  assert.equal(interpretSsdp(Buffer.from('HTTP/1.1 500 Oops\r\nST: x\r\n\r\n')), { type: 'drop', reason: 'not-ours' })
  assert.equal(interpretSsdp(Buffer.alloc(SSDP_DATAGRAM_BYTES_MAX + 1)), { type: 'drop', reason: 'too-large' })
  assert.equal(interpretSsdp(Buffer.from('\u0000\u0001garbage')), { type: 'drop', reason: 'malformed' })
})

test('a reply sheds optional headers to fit its budget, or is not made at all', () => {
  const full = buildReply(CANOPY_DEVICE_TYPE, advert, 512)!
  assert.match(full.toString(), /SERVER: /)
  assert.match(full.toString(), /BOOTID\.UPNP\.ORG: 7/)
  const small = buildReply(CANOPY_DEVICE_TYPE, advert, full.length - 1)!
  assert.ok(small.length < full.length)
  assert.not.match(small.toString(), /SERVER: /)
  let last = small.length
  for (let budget = last; budget > 0; budget--) {
    const r = buildReply(CANOPY_DEVICE_TYPE, advert, budget)
    if (r === null) { last = budget; break }
    assert.ok(r.length <= budget)
    assert.is(interpretSsdp(r).type, 'alive', 'every form a peer gets is still a valid announcement')
  }
  assert.ok(last > 150, 'below some size nothing fits')
  assert.is(replyBudget(100), 300)
  assert.is(replyBudget(400), 512)
})

test.run()
