// Whole agents on loopback (real HTTP and UDP, flash in memory): devices
// fetch a manifest through /api/content while only the gateway (the elected
// provider) touches the origin; trust and tampering; piece serving; a corrupt
// peer isolated; the scanner hook.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { keyPairFromSeed, formatPublicKey } from '../../src/crypto'
import { sha256, signManifest } from '../../src/content'
import { createSeededRandom } from '../../src/hal'
import { buildContentLan, type ContentNode } from '../helpers/content-lan'
import { httpRequest } from '../helpers/http'
import { startOrigin, type Origin } from '../helpers/origin'

const KEY = keyPairFromSeed(Buffer.alloc(32, 3))
const PUB = formatPublicKey(KEY.publicRaw)

function publish (origin: Origin, name: string, size: number, seed: number, pieceSize = 32 * 1024): { file: Buffer, murl: string, id: string } {
  const file = Buffer.from(createSeededRandom(seed).bytes(size))
  const pieces: string[] = []
  for (let at = 0; at < size; at += pieceSize) pieces.push(sha256(file.subarray(at, at + pieceSize)))
  const m = signManifest({ name, size, pieceSize, pieces, urls: [origin.url(`/${name}`)] }, KEY)
  origin.files.set(`/${name}`, { body: file })
  origin.files.set(`/${name}.canopy.json`, { body: m.bytes })
  return { file, murl: origin.url(`/${name}.canopy.json`), id: m.id }
}

const content = (n: ContentNode, murl: string, extra = ''): Promise<ReturnType<typeof httpRequest> extends Promise<infer R> ? R : never> =>
  httpRequest(`${n.url}/api/content?manifest=${encodeURIComponent(murl)}${extra}`, { timeoutMs: 20_000 })

test('three devices and a gateway: every copy verified, each byte from the origin once, and only by the provider', async () => {
  const origin = await startOrigin()
  const lan = await buildContentLan({ nodes: 4, trusted: [PUB] })
  try {
    const { file, murl, id } = publish(origin, 'update.bin', 900 * 1024 + 17, 1)
    const [gw, ...devices] = lan.nodes as [ContentNode, ...ContentNode[]]
    const replies = await Promise.all(devices.map((d) => content(d, murl)))
    for (const r of replies) {
      assert.is(r.status, 200)
      assert.is(r.headers['x-canopy-content'], id)
      assert.ok(r.body.equals(file), 'the copy is the file')
    }
    assert.is(origin.sent.get('/update.bin'), file.length, 'the file crossed the "WAN" exactly once')
    for (const d of devices) {
      const t = (d.agent.status() as any).transfers.list[0]
      assert.is(t.fromOriginBytes, 0, 'devices never touch the origin')
      assert.is(t.fromPeersBytes + t.fromProviderBytes, file.length)
    }
    const g = (gw.agent.status() as any).transfers
    assert.is(g.list[0].onBehalf, true)
    assert.is(g.list[0].fromOriginBytes, file.length)
    assert.ok(g.servedBytes >= file.length, 'the gateway served the devices')
    // A device that comes later finds the pieces on the LAN: the origin is not asked again.
    const metrics = (await httpRequest(`${devices[0]!.url}/metrics`)).text
    assert.match(metrics, /canopy_content_bytes_total\{source="provider"\} \d+/)
  } finally {
    await lan.stop()
    await origin.close()
  }
})

test('untrusted or tampered manifests are refused with a clear error; trust= is taken from this box', async () => {
  const origin = await startOrigin()
  const lan = await buildContentLan({ nodes: 1, trusted: [] })
  try {
    const { murl } = publish(origin, 'a.bin', 100_000, 2)
    const [gw] = lan.nodes as [ContentNode]
    const untrusted = await content(gw, murl)
    assert.is(untrusted.status, 403)
    assert.is(untrusted.json().error.code, 'PUBLISHER_UNTRUSTED')
    assert.match(untrusted.json().error.message, /not trusted here/)
    const trusted = await content(gw, murl, `&trust=${encodeURIComponent(PUB)}`)
    assert.is(trusted.status, 200)
    const good = origin.files.get('/a.bin.canopy.json')!.body
    const tampered = Buffer.from(good.toString().replace('"size":100000', '"size":100001'))
    origin.files.set('/t.canopy.json', { body: tampered })
    const t = await content(gw, origin.url('/t.canopy.json'), `&trust=${encodeURIComponent(PUB)}`)
    assert.is(t.status, 502)
    assert.is(t.json().error.code, 'MANIFEST_INVALID')
    origin.files.set('/junk.canopy.json', { body: Buffer.from('{"hello":1}') })
    assert.is((await content(gw, origin.url('/junk.canopy.json'))).json().error.code, 'MANIFEST_INVALID')
  } finally {
    await lan.stop()
    await origin.close()
  }
})

test('GET /p2p/piece: the verified piece, Range, 404, bad names, busy slots', async () => {
  const origin = await startOrigin()
  const lan = await buildContentLan({ nodes: 1, trusted: [PUB] })
  try {
    const { file, murl } = publish(origin, 'p.bin', 100_000, 3)
    const [gw] = lan.nodes as [ContentNode]
    assert.is((await content(gw, murl)).status, 200)
    const h = sha256(file.subarray(0, 32 * 1024))
    const whole = await httpRequest(`${gw.url}/p2p/piece/${h}`)
    assert.is(whole.status, 200)
    assert.ok(whole.body.equals(file.subarray(0, 32 * 1024)))
    const part = await httpRequest(`${gw.url}/p2p/piece/${h}`, { headers: { range: 'bytes=100-199' } })
    assert.is(part.status, 206)
    assert.is(part.headers['content-range'], `bytes 100-199/${32 * 1024}`)
    assert.ok(part.body.equals(file.subarray(100, 200)))
    assert.is((await httpRequest(`${gw.url}/p2p/piece/${h}`, { headers: { range: 'bytes=999999-' } })).status, 416)
    assert.is((await httpRequest(`${gw.url}/p2p/piece/${'0'.repeat(64)}`)).status, 404)
    assert.is((await httpRequest(`${gw.url}/p2p/piece/nothex`)).status, 400)
    gw.content.uploads = gw.agent.config.content.uploadSlots
    const busy = await httpRequest(`${gw.url}/p2p/piece/${h}`)
    assert.is(busy.status, 503)
    assert.is(busy.headers['retry-after'], '1')
    gw.content.uploads = 0
    const ranged = await content(gw, murl, '')
    const r = await httpRequest(`${gw.url}/api/content?manifest=${encodeURIComponent(murl)}`, { headers: { range: 'bytes=40000-70000' } })
    assert.is(r.status, 206)
    assert.ok(r.body.equals(file.subarray(40000, 70001)))
    assert.is(ranged.status, 200)
  } finally {
    await lan.stop()
    await origin.close()
  }
})

test('a peer serving a corrupt piece is isolated after that one piece; the copy is still right', async () => {
  const origin = await startOrigin()
  const lan = await buildContentLan({ nodes: 3, trusted: [PUB] })
  try {
    const { file, murl } = publish(origin, 'c.bin', 600_000, 4)
    const [gw, liar, victim] = lan.nodes as [ContentNode, ContentNode, ContentNode]
    assert.is((await content(liar, murl)).status, 200)
    // The liar flips a byte of every piece it serves; the gateway answers slowly, so the victim asks the liar.
    const pieces = liar.content.pieces!
    const get = pieces.get.bind(pieces)
    let lies = 0
    pieces.get = async (h: string) => {
      const b = await get(h)
      if (b === undefined) return b
      lies++
      const bad = Buffer.from(b)
      bad[5] = bad[5]! ^ 0xff
      return bad
    }
    const gwPieces = gw.content.pieces!
    const gwGet = gwPieces.get.bind(gwPieces)
    gwPieces.get = async (h: string) => { await new Promise((resolve) => setTimeout(resolve, 150)); return await gwGet(h) }
    const r = await content(victim, murl)
    assert.is(r.status, 200)
    assert.ok(r.body.equals(file))
    const v = (victim.agent.status() as any).transfers
    assert.is(v.peersIsolated, 1, `isolated ${v.peersIsolated}; the liar told ${lies} lies`)
    assert.is(v.corruptPieces, 1, 'after one bad piece, never asked again')
    const rec = v.peers.find((p: any) => p.nodeId === liar.agent.identity.nodeId)
    assert.is(rec.banned, true)
  } finally {
    await lan.stop()
    await origin.close()
  }
})

test('the scanner hook vetoes a completed file: the app never gets its last bytes', async () => {
  const origin = await startOrigin()
  const lan = await buildContentLan({ nodes: 1, trusted: [PUB], config: () => ({ content: { scanner: ['sh', '-c', 'echo infected; exit 3', 'scan'] } }) })
  try {
    const { file, murl } = publish(origin, 'v.bin', 200_000, 5)
    const [gw] = lan.nodes as [ContentNode]
    const r = await content(gw, murl).catch((e: Error) => e)
    assert.ok(r instanceof Error || (r.status === 200 && r.body.length < file.length), 'the stream broke off before the end')
    const s = (gw.agent.status() as any).transfers
    assert.is(s.vetoed, 1, JSON.stringify(s.list))
    assert.is(s.list[0].state, 'vetoed')
    assert.match(s.list[0].note, /infected/)
    const again = await content(gw, murl)
    assert.is(again.status, 403)
    assert.is(again.json().error.code, 'CONTENT_VETOED')
  } finally {
    await lan.stop()
    await origin.close()
  }
})

test.run()
