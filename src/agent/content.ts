// Content distribution on an agent: the transfers service (also the
// ContentIndex the LAN protocol answers from), the forward proxy, and their
// HTTP routes:
//   GET /p2p/piece/<hash>[?c=<content id>&m=<manifest URL>]   a verified piece (Range), for peers
//   GET /p2p/manifest?url=<URL>                                 the manifest this node signed for a cached URL
//   GET /api/content?manifest=<URL> | content=<id> | url=<URL>  a whole verified file, in order, as pieces arrive (Range)

import type { IncomingMessage, ServerResponse } from 'node:http'
import { ContentService, Proxy, sendBody, type Active } from '../content'
import { checkTrust } from '../content/manifest'
import { parsePublicKey } from '../crypto'
import { CanopyError } from '../errors'
import { addressScope, commandScanner, parseIp } from '../hal'
import type { FlashCacheService } from '../flash-cache'
import { CONTENT_QUERY_BYTES_MAX } from '../limits'
import { isContentId, parseContentRef, type PeerDirectory } from '../protocol'
import type { Agent } from './agent'
import type { LanProtocol } from './protocol'

/** The transfers service, before the LAN protocol is built (it is the protocol's ContentIndex). */
export function createContent (agent: Agent, cache: FlashCacheService): ContentService {
  const argv = agent.config.content.scanner
  return new ContentService(agent, cache, argv.length === 0 ? null : commandScanner(argv, agent.hal.dataDir))
}

export function addContent (agent: Agent, content: ContentService, lan: LanProtocol, peers: PeerDirectory): void {
  content.attach({ resolver: lan.resolver, election: lan.election, peers })
  agent.add(content)
  const proxy = agent.config.proxy.enabled ? new Proxy(agent, content) : null
  if (proxy !== null) agent.add(proxy)
  if (!agent.config.content.enabled) return
  const { http } = agent
  const query = (url: URL): URLSearchParams => {
    if (url.search.length > CONTENT_QUERY_BYTES_MAX) throw new CanopyError('INPUT_INVALID', 'query too long')
    return url.searchParams
  }

  http.route('GET', '/p2p/piece/:hash', async ({ req, res, url, params }) => {
    const q = query(url)
    const hash = params.hash!.toLowerCase()
    if (!isContentId(hash)) throw new CanopyError('INPUT_INVALID', 'a piece is named by its SHA-256')
    let buf = await content.pieces?.get(hash)
    const c = q.get('c')
    if (buf === undefined && c !== null && isContentId(c)) buf = await content.onDemand(hash, c, q.get('m'))
    if (buf === undefined) throw new CanopyError('CACHE_NOT_FOUND', 'not here')
    if (content.uploads >= agent.config.content.uploadSlots) {
      res.setHeader('retry-after', '1')
      throw new CanopyError('HTTP_UNAVAILABLE', 'busy')
    }
    const piece = buf
    content.uploads++
    try {
      const n = await sendBody(req, res, piece.length, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' }, (p) => piece.subarray(p))
      content.totals.servedBytes += n
      content.pieces?.count(n)
      content.totals.servedPieces++
    } finally {
      content.uploads--
    }
  })

  http.route('GET', '/p2p/manifest', async ({ res, url }) => {
    const u = query(url).get('url')
    const bytes = u === null || proxy === null ? undefined : await proxy.manifestBytes(u)
    if (bytes === undefined) throw new CanopyError('HTTP_NOT_FOUND', 'not here')
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length, 'cache-control': 'no-store' })
    res.end(bytes)
  })

  http.route('GET', '/api/content', async ({ req, res, url, remote }) => {
    const q = query(url)
    const extra = q.getAll('trust')
    const ip = parseIp(remote)
    if (extra.length > 0 && (ip === null || addressScope(ip) !== 'loopback')) throw new CanopyError('HTTP_FORBIDDEN', 'trust= is accepted from this box only')
    for (const k of extra) if (parsePublicKey(k) === null) throw new CanopyError('INPUT_INVALID', 'trust= takes an "ed25519:…" key')
    const manifestUrl = q.get('manifest')
    const id = q.get('content')
    const plain = q.get('url')
    let a: Active
    if (manifestUrl !== null) {
      a = content.open(await content.manifestFrom(checkUrl(manifestUrl), extra), false, manifestUrl)
    } else if (id !== null) {
      const m = isContentId(id) ? content.manifest(id) : undefined
      if (m === undefined) throw new CanopyError('HTTP_NOT_FOUND', 'unknown content id; ask by manifest=URL')
      a = content.open(checkTrust(m, [...content.trusted, ...extra]))
    } else if (plain !== null) {
      const target = checkUrl(plain)
      const m = await content.providerManifest(target)
      if (m === null) {
        if (proxy === null) throw new CanopyError('HTTP_NOT_FOUND', 'the proxy is off')
        await proxy.serve(req, res, new URL(target))
        return
      }
      a = content.open(m)
    } else {
      throw new CanopyError('INPUT_INVALID', 'manifest=URL, content=ID or url=URL is required')
    }
    await sendFile(req, res, content, a)
  })
}

function checkUrl (text: string): string {
  const u = parseContentRef(text)
  if (isContentId(u)) throw new CanopyError('INPUT_INVALID', 'expected an http(s) URL')
  return u
}

/** The whole file, in order, each piece as soon as it is verified; the last bytes only once a configured scanner passed the file. */
async function sendFile (req: IncomingMessage, res: ServerResponse, content: ContentService, a: Active): Promise<void> {
  const { m, t } = a
  const last = m.pieces.length - 1
  if (last < 0) await content.scanned(a)
  await sendBody(req, res, m.size, {
    'content-type': 'application/octet-stream',
    'content-disposition': `attachment; filename="${m.name.replace(/[^\w.-]/g, '_')}"`,
    'x-canopy-content': m.id,
    'cache-control': 'no-store'
  }, async (p) => {
    const i = Math.floor(p / m.pieceSize)
    for (let tries = 0; tries < 3; tries++) {
      await t.piece(i)
      if (i === last) await content.scanned(a)
      const b = await content.pieces?.get(m.pieces[i]!)
      if (b !== undefined) return b.subarray(p - i * m.pieceSize)
    }
    throw new CanopyError('CACHE_NOT_FOUND', 'evicted again and again')
  })
}
