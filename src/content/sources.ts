// The sources of pieces on real sockets: a LAN peer or the designated
// provider (GET /p2p/piece/<hash> on its HTTP port) and the origin (HTTP
// Range against any plain server or CDN listed in the manifest). Each has its
// own keep-alive pool, closed when the engine drops it.

import { CanopyError } from '../errors'
import { httpOpen, keepAlivePool, readBody } from '../http/client'
import { PIECE_ORIGIN_TIMEOUT_MS } from '../limits'
import { covers, type PieceRanges } from '../protocol'
import { pieceLength, type Manifest } from './manifest'
import type { PieceSource } from './transfer'
import type { WanGate } from './wan'

export interface PeerSource extends PieceSource {
  /** What it said it holds (null: all; the provider fetches what it lacks). Updated as resolution learns more. */
  pieces: PieceRanges | null
}

/** Node `id` at baseUrl, for pieces of m; `query` goes on every request (the provider's ?c=&m=). */
export function peerSource (id: string, kind: 'peer' | 'provider', baseUrl: string, m: Manifest, slots: number, pieces: PieceRanges | null, query = ''): PeerSource {
  const pool = keepAlivePool(slots)
  const src: PeerSource = {
    id,
    kind,
    slots,
    pieces,
    has: (i) => covers(src.pieces, [[i, i + 1]]),
    async fetch (i, signal) {
      const len = pieceLength(m, i)
      const res = await httpOpen(`${baseUrl}/p2p/piece/${m.pieces[i]!}${query}`, { agent: pool, signal })
      if (res.statusCode === 200) return await readBody(res, len, len)
      res.resume()
      throw new CanopyError(({ 404: 'CACHE_NOT_FOUND', 503: 'HTTP_UNAVAILABLE' } as const)[res.statusCode as 404] ?? 'UPSTREAM_FAILED', `HTTP ${res.statusCode ?? 0}`)
    },
    close: () => { pool.destroy() }
  }
  return src
}

export function originSource (m: Manifest, slots: number, gate: WanGate): PieceSource {
  const pool = keepAlivePool(slots)
  let turn = 0
  return {
    id: 'origin',
    kind: 'origin',
    slots,
    // Under a rate cap every slot shares it: give a request the time its share needs, twice over.
    timeoutMs: PIECE_ORIGIN_TIMEOUT_MS + 2000 * slots * gate.secondsFor(m.pieceSize),
    has: () => true,
    ready: () => gate.open(),
    async fetch (i, signal) {
      const start = i * m.pieceSize
      const len = pieceLength(m, i)
      const url = m.urls[turn++ % m.urls.length]!
      const res = await httpOpen(url, { agent: pool, signal, headers: { range: `bytes=${start}-${start + len - 1}` } })
      const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range']))
      const ranged = res.statusCode === 206 && cr !== null && Number(cr[1]) === start && Number(cr[2]) === start + len - 1 && (cr[3] === '*' || Number(cr[3]) === m.size)
      // A server without Range support can still give a one-piece file whole.
      if (!ranged && !(res.statusCode === 200 && len === m.size)) {
        res.resume()
        throw new CanopyError('UPSTREAM_FAILED', `origin: HTTP ${res.statusCode ?? 0}, not the range asked for`)
      }
      return await readBody(res, len, len, (n) => gate.pace(n))
    },
    close: () => { pool.destroy() }
  }
}
