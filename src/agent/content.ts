// Content distribution on an agent: the transfers service (also the
// ContentIndex the LAN protocol answers from), the forward proxy, and their
// HTTP routes:
//   GET /p2p/piece/<hash>[?c=<content id>&m=<manifest URL>]   a verified piece (Range), for peers
//   GET /p2p/manifest?url=<URL>                                 the manifest this node signed for a cached URL
//   GET /api/content?manifest=<URL> | url=<URL>                 a whole verified file, in order, as pieces arrive (Range)

import { createContentService, createProxy, type ContentService, sendBody } from '../content'
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
  return createContentService(agent, cache, argv.length === 0 ? null : commandScanner(argv, agent.hal.dataDir))
}

const octets = { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' }

export function addContent (agent: Agent, content: ContentService, lan: LanProtocol, peers: PeerDirectory): void {
  const { http, config } = agent
  content.lan = { ...lan, peers }
  agent.add(content)
  const proxy = config.proxy.enabled ? createProxy(agent, content) : null
  if (proxy !== null) agent.add(proxy)
  if (!config.content.enabled) return
  const invalid = (why: string): CanopyError => new CanopyError('INPUT_INVALID', why)
  const query = (url: URL): URLSearchParams => {
    if (url.search.length > CONTENT_QUERY_BYTES_MAX) throw invalid('query too long')
    return url.searchParams
  }
  const piece = async (hash: string): Promise<Buffer> => {
    const b = await content.pieces?.get(hash)
    if (b === undefined) throw new CanopyError('CACHE_NOT_FOUND', 'not here')
    return b
  }

  http.route('GET', '/p2p/piece/:hash', async ({ req, res, url, params }) => {
    const q = query(url)
    const hash = params.hash!.toLowerCase()
    const c = q.get('c')
    if (!isContentId(hash)) throw invalid('a piece is named by its SHA-256')
    const buf = (c !== null && isContentId(c) && content.pieces?.has(hash) === false ? await content.onDemand(hash, c, q.get('m')) : undefined) ?? await piece(hash)
    if (content.uploads >= config.content.uploadSlots) {
      res.setHeader('retry-after', '1')
      throw new CanopyError('HTTP_UNAVAILABLE', 'busy')
    }
    content.uploads++
    try {
      const n = await sendBody(req, res, buf.length, octets, (p) => buf.subarray(p))
      const { totals } = content
      totals.servedBytes += n
      totals.servedPieces++
      content.pieces?.count(n)
    } finally {
      content.uploads--
    }
  })

  http.route('GET', '/p2p/manifest', async ({ res, url }) => {
    const id = proxy?.shared(query(url).get('url') ?? '')
    const bytes = await piece(id ?? '0'.repeat(64))
    res.writeHead(200, { ...octets, 'content-length': bytes.length })
    res.end(bytes)
  })

  http.route('GET', '/api/content', async ({ req, res, url, remote }) => {
    const q = query(url)
    const extra = q.getAll('trust')
    const ip = parseIp(remote)
    if (extra.length > 0 && (ip === null || addressScope(ip) !== 'loopback')) throw new CanopyError('HTTP_FORBIDDEN', 'trust= is accepted from this box only')
    for (const k of extra) if (parsePublicKey(k) === null) throw invalid('trust= takes an "ed25519:…" key')
    const manifestUrl = q.get('manifest')
    const plain = q.get('url')
    const target = parseContentRef(manifestUrl ?? plain ?? '')
    if (isContentId(target)) throw invalid('manifest=URL or url=URL is required')
    const m = manifestUrl !== null ? await content.manifestFrom(target, extra) : await content.providerManifest(target)
    if (m === null) {
      if (proxy === null) throw new CanopyError('HTTP_NOT_FOUND', 'the proxy is off')
      return await proxy.serve(req, res, new URL(target))
    }
    // The whole file, in order, each piece as soon as it is verified; the last bytes only once a configured scanner passed the file.
    const a = content.open(m, false, manifestUrl === null ? null : target)
    const last = m.pieces.length - 1
    if (last < 0) await content.scanned(a)
    await sendBody(req, res, m.size, { ...octets, 'content-disposition': `attachment; filename="${m.name.replace(/[^\w.-]/g, '_')}"`, 'x-canopy-content': m.id }, async (p) => {
      const i = Math.floor(p / m.pieceSize)
      const b = await content.read(a, i)
      if (i === last) await content.scanned(a)
      return b.subarray(p - i * m.pieceSize)
    })
  })
}
