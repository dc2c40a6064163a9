// Fuzz: 1 000 000 mutated and generated datagrams through the parser and the
// interpreter. Nothing may throw but the coded error, no input may take more
// than a few milliseconds, and the heap must stay flat.
//   CANOPY_FUZZ_COUNT=N overrides the count (CANOPY_SEED replays a run).

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { CanopyError } from '../../../src/errors'
import { createSeededRandom, type Random } from '../../../src/hal'
import { SSDP_DATAGRAM_BYTES_MAX } from '../../../src/limits'
import { interpretSsdp } from '../../../src/protocol/ssdp/interpret'
import { parseSsdp } from '../../../src/protocol/ssdp/message'
import { buildAlive, buildByebye, buildReply, buildSearch } from '../../../src/protocol/ssdp/messages'
import { CANOPY_DEVICE_TYPE, deviceUuid } from '../../../src/protocol/ssdp/names'
import { identityFor } from '../../helpers/sim-lan'
import { mutate } from '../../helpers/mutate'
import { testSeed } from '../../helpers/seed'

const COUNT = Number(process.env.CANOPY_FUZZ_COUNT ?? 1_000_000)
/** "A few ms": an input slower than this, on its best of several runs, fails the test. */
const SLOW_MS = 5

const { nodeId } = identityFor(11)
const advert = { nodeId, location: 'http://192.168.1.2:8787/api/describe', maxAgeSeconds: 300, server: 'Node.js/20 UPnP/1.1 Canopy/0.1.0', bootId: 1, configId: 2 }
const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1')

const CORPUS: Buffer[] = [
  buildAlive(advert), buildByebye(nodeId), buildSearch(CANOPY_DEVICE_TYPE, 1), buildReply(CANOPY_DEVICE_TYPE, advert, 512)!,
  buildSearch('ssdp:all', 3), buildSearch('upnp:rootdevice', 5),
  crlf(['M-SEARCH * HTTP/1.1', 'HOST: 239.255.255.250:1900', 'ST: urn:canopy:device:agent:1', 'MAN: "ssdp:discover"', 'MX: 3']),
  crlf(['M-SEARCH * HTTP/1.1', 'Host: 239.255.255.250:1900', 'Man: "ssdp:discover"', 'ST: ssdp:all', 'MX: 3', 'User-Agent: Linux/6.1 UPnP/1.0 GSSDP/1.6.2']),
  crlf(['NOTIFY * HTTP/1.1', 'HOST: 239.255.255.250:1900', 'CACHE-CONTROL: max-age=120', 'LOCATION: http://192.168.1.1:5000/rootDesc.xml',
    'SERVER: OpenWRT/21.02 UPnP/1.1 MiniUPnPd/2.2.1', 'NT: upnp:rootdevice', 'USN: uuid:c1c1c1c1-0000-1111-2222-333333333333::upnp:rootdevice', 'NTS: ssdp:alive']),
  crlf(['HTTP/1.1 200 OK', 'ST: urn:canopy:device:agent:1', `USN: ${deviceUuid(nodeId)}::urn:canopy:device:agent:1`, 'CACHE-CONTROL: max-age=1800',
    'DATE: Thu, 01 Jan 2026 00:00:00 GMT', 'SERVER: node.js/20.0.0 UPnP/1.1 node-ssdp/4.0.1', 'EXT: ', 'LOCATION: http://10.0.0.2:80/d'])
]

const NAMES = ['HOST', 'MAN', 'MX', 'ST', 'NT', 'NTS', 'USN', 'LOCATION', 'CACHE-CONTROL', 'SERVER', 'EXT', 'BOOTID.UPNP.ORG', 'CONFIGID.UPNP.ORG', 'X-Y', 'host', 'st']
const VALUES = ['239.255.255.250:1900', '"ssdp:discover"', 'ssdp:discover', '0', '5', '6', '-1', '99999999999', 'ssdp:all', 'upnp:rootdevice', CANOPY_DEVICE_TYPE,
  'ssdp:alive', 'ssdp:byebye', `${deviceUuid(nodeId)}::${CANOPY_DEVICE_TYPE}`, deviceUuid(nodeId), 'http://192.168.1.2:8787/api/describe', 'http://[::1]:80/',
  'http://999.1.1.1:80/', 'max-age=1800', 'max-age=', 'max-age="60", no-cache', '', ' ', 'x'.repeat(300), '\u00ff\u0080']
const STARTS = ['M-SEARCH * HTTP/1.1', 'NOTIFY * HTTP/1.1', 'HTTP/1.1 200 OK', 'HTTP/1.0 200 OK', 'HTTP/1.1 404 Not Found', 'M-SEARCH * HTTP/1.0', 'GET / HTTP/1.1', '']

/** A grammar-shaped message from the SSDP vocabulary, sometimes bent. */
function generate (r: Random): Buffer {
  const lines = [STARTS[r.int(STARTS.length)]!]
  const n = r.int(r.int(8) === 0 ? 40 : 10)
  for (let i = 0; i < n; i++) {
    const sep = [': ', ':', ' : ', ':\t', '::'][r.int(5)]!
    lines.push(`${NAMES[r.int(NAMES.length)]!}${sep}${VALUES[r.int(VALUES.length)]!}`)
  }
  const end = ['\r\n\r\n', '\r\n', '\n\n', '', '\r\n\r\nbody'][r.int(r.int(3) === 0 ? 5 : 1)]!
  return Buffer.from(lines.join(r.int(20) === 0 ? '\n' : '\r\n') + end, 'latin1')
}

function input (r: Random): Buffer {
  const k = r.int(10)
  if (k < 6) return mutate(CORPUS[r.int(CORPUS.length)]!, r, CORPUS, SSDP_DATAGRAM_BYTES_MAX + 64)
  if (k < 9) return generate(r)
  return r.bytes(r.int(SSDP_DATAGRAM_BYTES_MAX + 64))
}

function exposeGc (): () => void {
  setFlagsFromString('--expose_gc')
  return runInNewContext('gc') as () => void
}

test(`${COUNT.toLocaleString('en-US')} mutated and generated datagrams: coded errors only, a few ms at most, flat memory`, () => {
  const seed = testSeed('ssdp fuzz')
  const r = createSeededRandom(seed)
  const gc = exposeGc()
  const outcomes = { parsed: 0, malformed: 0, events: new Map<string, number>() }
  let slowest = 0
  let slowInput: Buffer | null = null
  let heapAtTenth = 0
  for (let i = 0; i < COUNT; i++) {
    if (i === Math.floor(COUNT / 10)) { gc(); heapAtTenth = process.memoryUsage().heapUsed }
    const data = input(r)
    const t0 = performance.now()
    try {
      parseSsdp(data)
      outcomes.parsed++
    } catch (err) {
      if (!CanopyError.is(err, 'SSDP_MALFORMED')) assert.unreachable(`input ${i} (seed ${seed}) threw ${String(err)}: ${JSON.stringify(data.toString('latin1'))}`)
      outcomes.malformed++
    }
    const ev = interpretSsdp(data) // never throws: malformed input is a drop
    const dt = performance.now() - t0
    const key = ev.type === 'drop' ? `drop:${ev.reason}` : ev.type
    outcomes.events.set(key, (outcomes.events.get(key) ?? 0) + 1)
    if (dt > slowest) {
      // A GC pause or the other tenant of this machine can stall any call: an input's cost is its best of five runs.
      let best = dt
      for (let k = 0; k < 5 && best > slowest; k++) {
        const t1 = performance.now()
        try { parseSsdp(data) } catch { /* coded, checked above */ }
        interpretSsdp(data)
        best = Math.min(best, performance.now() - t1)
      }
      if (best > slowest) { slowest = best; slowInput = data }
    }
  }
  gc()
  const heapEnd = process.memoryUsage().heapUsed
  const summary = [...outcomes.events].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')
  console.log(`  parsed ${outcomes.parsed}, malformed ${outcomes.malformed}; ${summary}; slowest ${slowest.toFixed(3)} ms; heap ${((heapEnd - heapAtTenth) / 1048576).toFixed(2)} MiB after the first tenth`)
  assert.ok(slowest < SLOW_MS, `slowest input took ${slowest.toFixed(2)} ms: ${JSON.stringify(slowInput?.toString('latin1').slice(0, 200))}`)
  assert.ok(heapEnd - heapAtTenth < 8 * 1048576, `heap grew ${(heapEnd - heapAtTenth) / 1048576} MiB`)
  // The fuzzer must reach deep: valid searches and announcements, not just garbage.
  for (const k of ['search', 'alive', 'byebye', 'drop:malformed', 'drop:no-mx', 'drop:bad-usn', 'drop:bad-location']) {
    assert.ok((outcomes.events.get(k) ?? 0) > 0 || COUNT < 10_000, `no input reached ${k}`)
  }
})

test.run()
