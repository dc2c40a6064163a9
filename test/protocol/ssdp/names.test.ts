import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SSDP_MAX_AGE_SECONDS_MAX, SSDP_MAX_AGE_SECONDS_MIN, SSDP_MX_SECONDS_MAX } from '../../../src/limits'
import {
  CANOPY_DEVICE_TYPE, ROOT_DEVICE, deviceUuid, formatLocation, nodeIdOfCanopyUsn, nodeIdOfUuid, parseId, parseLocation, parseMaxAge, parseMx, usnFor
} from '../../../src/protocol/ssdp/names'
import { identityFor } from '../../helpers/sim-lan'

test('the node id is the device UUID, and reads back from the USN', () => {
  const { nodeId } = identityFor(7)
  const uuid = deviceUuid(nodeId)
  assert.match(uuid, /^uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  assert.is(nodeIdOfUuid(uuid), nodeId)
  assert.is(nodeIdOfUuid(uuid.toUpperCase().replace('UUID:', 'uuid:')), nodeId, 'hex digits in either case')
  const usn = usnFor(nodeId, CANOPY_DEVICE_TYPE)
  assert.is(usn, `${uuid}::${CANOPY_DEVICE_TYPE}`)
  assert.is(nodeIdOfCanopyUsn(usn), nodeId)
  assert.is(usnFor(nodeId, uuid), uuid, 'a search for the UUID is answered with the bare UUID')
  assert.is(usnFor(nodeId, ROOT_DEVICE), `${uuid}::upnp:rootdevice`)
  for (const bad of ['', usn.slice(1), `${uuid}::urn:canopy:device:agent:2`, `${uuid}x::${CANOPY_DEVICE_TYPE}`, `uuid:${nodeId}::${CANOPY_DEVICE_TYPE}`, `${uuid}::${CANOPY_DEVICE_TYPE}::x`]) {
    assert.is(nodeIdOfCanopyUsn(bad), null, bad)
  }
})

test('LOCATION: http, dotted IPv4, explicit port; anything else is not fetched', () => {
  assert.equal(parseLocation('http://192.168.1.2:8787/api/describe'), { host: '192.168.1.2', port: 8787, path: '/api/describe' })
  assert.equal(parseLocation('http://10.0.0.1:80'), { host: '10.0.0.1', port: 80, path: '/' })
  assert.is(formatLocation(parseLocation('http://10.0.0.1:1/a?b=c')!), 'http://10.0.0.1:1/a?b=c')
  for (const bad of ['https://192.168.1.2:8787/', 'http://192.168.1.2/api', 'http://host.lan:80/', 'http://[fe80::1]:80/', 'http://192.168.1.256:80/',
    'http://192.168.1.2:0/', 'http://192.168.1.2:65536/', 'http://user@192.168.1.2:80/', 'http://192.168.1.2:80/a b', 'http://192.168.1.2:80x', 'http://01.2.3.4:80/']) {
    assert.is(parseLocation(bad), null, bad)
  }
})

test('max-age, MX and the UPnP ids', () => {
  assert.is(parseMaxAge('max-age=1800'), 1800)
  assert.is(parseMaxAge('no-cache="Ext", max-age = 120'), 120)
  assert.is(parseMaxAge('MAX-AGE=5'), SSDP_MAX_AGE_SECONDS_MIN, 'clamped up')
  assert.is(parseMaxAge('max-age=999999999'), SSDP_MAX_AGE_SECONDS_MAX, 'clamped down')
  for (const bad of [undefined, '', 'max-age=', 'max-age=-1', 'max-age=1e3', 'no-cache']) assert.is(parseMaxAge(bad), null, String(bad))
  assert.is(parseMx(undefined), 'missing')
  for (const bad of ['', '-1', '1.5', 'x', '9999999999']) assert.is(parseMx(bad), 'bad', bad)
  assert.is(parseMx('0'), 0)
  assert.is(parseMx('3'), 3)
  assert.is(parseMx('120'), SSDP_MX_SECONDS_MAX)
  assert.is(parseId('2147483647'), 2147483647)
  assert.is(parseId('2147483648'), null)
  assert.is(parseId('x'), null)
})

test.run()
