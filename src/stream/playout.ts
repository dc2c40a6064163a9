// GET /stream/NAME: the stream as MPEG-TS over HTTP for any player (VLC,
// mpv, ffplay, a TV app). The node joins the stream's tree on the first
// player and shares its one subscription and ring among all of them.
// ?framing=seq frames each chunk with its sequence number (FORMAT.md).

import type { Clock } from '../hal'
import { CanopyError } from '../errors'
import type { RequestContext } from '../http'
import { STREAM_JOIN_DEADLINE_MS, STREAM_PLAYERS_MAX } from '../limits'
import { Player, type Framing } from './player'
import type { Streams } from './streams'

export interface PlayoutState {
  players: Set<Player>
}

export async function playout (ctx: RequestContext, streams: Streams, state: PlayoutState, clock: Clock): Promise<void> {
  const { req, res, params, url } = ctx
  const name = params.name ?? ''
  const framing: Framing = url.searchParams.get('framing') === 'seq' ? 'seq' : 'ts'
  if (state.players.size >= STREAM_PLAYERS_MAX) throw new CanopyError('LIMIT_REACHED', `already ${STREAM_PLAYERS_MAX} players on this node`)
  let gone = false
  req.socket.once('close', () => { gone = true })
  const session = await streams.subscribe(name, STREAM_JOIN_DEADLINE_MS)
  if (gone || res.destroyed) { streams.release(session); return }
  res.writeHead(200, {
    'content-type': framing === 'ts' ? 'video/mp2t' : 'application/octet-stream',
    'cache-control': 'no-store',
    // A live stream is never followed by another request on its connection.
    connection: 'close',
    'x-canopy-stream': session.streamId
  })
  if (req.method === 'HEAD') { res.end(); streams.release(session); return }
  const player = new Player(session, {
    write: (b, done) => res.write(b, () => { done() }),
    onDrain: (fn) => { res.on('drain', fn) },
    end: () => { res.end() }
  }, clock, framing)
  state.players.add(player)
  session.listeners.add(player)
  res.once('close', () => {
    state.players.delete(player)
    session.listeners.delete(player)
    streams.release(session)
    player.close()
  })
  player.start()
}
