// POST /stream/NAME: a live MPEG-TS body (chunked, endless) from a pusher
// holding the push token, cut into chunks and published as a new stream
// rooted at this node. The stream ends when the body ends, the pusher goes
// silent for STREAM_INGEST_IDLE_MS, or the agent stops.

import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { CanopyError } from '../errors'
import type { Clock, Timer } from '../hal'
import { sendJson, type RequestContext } from '../http'
import { STREAM_INGEST_IDLE_MS } from '../limits'
import { sha256 } from '../protocol/link'
import type { Logger } from '../log'
import { createTsChunker } from './chunker'
import type { Session } from './session'
import type { Streams } from './streams'


/** Constant-time check of "Authorization: Bearer T". */
export function checkPushToken (req: IncomingMessage, token: string): void {
  if (token === '') throw new CanopyError('HTTP_FORBIDDEN', 'ingest is off: start the agent with --push-token T')
  const header = req.headers.authorization ?? ''
  const m = /^Bearer (.+)$/.exec(header)
  if (m === null || !timingSafeEqual(sha256(m[1]!), sha256(token))) throw new CanopyError('UNAUTHORIZED', 'needs "Authorization: Bearer T" (--token T)')
}

export interface Ingest {
  session: Session
  bytes: number
  stop (): void
}

export function ingest (ctx: RequestContext, streams: Streams, options: { token: string, clock: Clock, log: Logger, onDone: (i: Ingest) => void }): Ingest {
  const { req, res, params } = ctx
  checkPushToken(req, options.token)
  const session = streams.publish(params.name ?? '')
  const chunker = createTsChunker((packets, flags) => { if (!session.ended) session.publish(packets, flags) })
  let idle: Timer | null = null
  let done = false
  const it: Ingest = {
    session,
    bytes: 0,
    stop: () => finish('stopped')
  }
  const finish = (why: string): void => {
    if (done) return
    done = true
    idle?.cancel()
    chunker.end()
    session.end()
    // The chunker's counters: packets, chunks, keyChunks, skippedBytes.
    const counts = { bytes: it.bytes, ...chunker.counters }
    options.log.info('ingest ended', { stream: session.name, why, ...counts })
    options.onDone(it)
    if (!res.headersSent && !res.destroyed) sendJson(res, 200, { name: session.name, streamId: session.streamId, ...counts })
    if (why !== 'end') req.destroy()
  }
  const arm = (): void => {
    idle?.cancel()
    idle = options.clock.setTimeout(() => { finish('idle') }, STREAM_INGEST_IDLE_MS)
  }
  options.log.info('ingest started', { stream: session.name, streamId: session.streamId, remote: ctx.remote })
  arm()
  req.on('data', (c: Buffer) => {
    if (done) return
    it.bytes += c.length
    chunker.push(c)
    session.pause()
    arm()
  })
  req.on('end', () => { finish('end') })
  req.on('close', () => { finish('closed') })
  req.on('error', () => { finish('error') })
  return it
}
