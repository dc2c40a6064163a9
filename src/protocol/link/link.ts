// One authenticated connection to a peer. Both sides send HELLO at once
// (nonce, public key, listen port, channels served); each answers the other's
// HELLO with a PROOF (an ed25519 signature over both hellos and its role);
// the link opens when the peer's proof verifies. After that: frames on named
// channels, a bounded send queue with urgent frames first and per-frame
// expiry, ping/pong for liveness and round-trip time.
//
// The same code runs over real TCP sockets and over the simulated network:
// it only sees a Duplex from hal.net and time from hal.clock.

import type { KeyObject } from 'node:crypto'
import { signDomain, verifyDomain } from '../../crypto'
import { CanopyError, assert } from '../../errors'
import type { Clock, StreamSocket, Timer } from '../../hal'
import { nodeIdOf } from '../../identity'
import {
  LINK_DEAD_MS, LINK_FRAME_BYTES_MAX, LINK_HANDSHAKE_MS, LINK_KEEPALIVE_MS,
  LINK_QUEUE_BYTES_MAX, LINK_QUEUE_FRAMES_MAX, LINK_URGENT_FRAMES_MAX
} from '../../limits'
import { channelNumber, type ChannelName } from './channels'
import {
  CLOSE_REASONS, LINK_VERSION, NONCE_BYTES, PROOF_DOMAIN, decodeControl, encodeClose, encodeHello, encodePing,
  encodeProof, proofTranscript, type CloseReason, type ControlMessage
} from './control'
import { FRAME_HEADER_BYTES, createFrameDecoder, encodeFrame } from './frame'
import type { FramePool } from './pool'
import { createFrameQueue } from './queue'

export interface LinkIdentity {
  readonly nodeId: string
  readonly publicKey: Buffer
  readonly privateKey: KeyObject
}

export interface LinkTimings {
  handshakeMs: number
  keepaliveMs: number
  deadMs: number
}

export interface LinkOptions {
  socket: StreamSocket
  /** Did this side connect? (It decides the role byte in the proof.) */
  initiator: boolean
  identity: LinkIdentity
  clock: Clock
  /** 32 random bytes for this handshake. */
  nonce: Buffer
  /** Where this side accepts links (told to the peer). */
  listenPort: number
  /** Channels this side serves. */
  channels: readonly ChannelName[]
  /** Refuse the peer unless its key hashes to this id. */
  expectedNodeId?: string
  extension?: Buffer
  timings?: Partial<LinkTimings>
  /** Received frames come from here; queued pooled frames are held until written. */
  pool?: FramePool
  /** Frames on every channel but the link's own. */
  onFrame?: (link: Link, frame: Buffer) => void
}

export interface SendOptions {
  /** Monotonic ms after which the frame is dropped instead of written (0: never). */
  expiresAtMs?: number
  /** Ahead of queued data (control messages). */
  urgent?: boolean
}

export interface LinkCounters {
  bytesIn: number
  bytesOut: number
  /** Frames refused because the queue was full. */
  droppedFull: number
  /** Frames dropped at the head of the queue past their expiry. */
  droppedExpired: number
}

export type LinkState = 'handshake' | 'open' | 'closed'

/** One authenticated connection to a peer (createLink). */
export interface Link {
  readonly state: LinkState
  readonly open: boolean
  /** The peer's, set when the handshake completes. */
  readonly nodeId: string
  readonly publicKey: Buffer
  readonly peerListenPort: number
  readonly peerExtension: Buffer
  /** The extension this side sent in its hello (groups find their key share's secret by it). */
  readonly extension: Buffer
  /** Latest ping round trip; null until one completes. */
  readonly rttMs: number | null
  readonly closeReason: CloseReason | null
  readonly remoteAddress: string
  readonly counters: LinkCounters
  /** Settles when the handshake completes (or fails). */
  readonly ready: Promise<Link>
  /** Monotonic ms of the last channel frame either way. */
  readonly lastTrafficMs: number
  /** Monotonic ms the handshake completed. */
  readonly openedAtMs: number
  /** Did this side connect? */
  readonly initiator: boolean
  readonly queuedBytes: number
  readonly queuedFrames: number
  readonly pinned: boolean
  /** Keep the link from being closed as idle (static peers, parents, children). */
  pin (): void
  unpin (): void
  /** Does the peer serve this channel? */
  serves (channel: ChannelName): boolean
  onClose (fn: (link: Link) => void): void
  /** Queue payload on a channel; false when the link is not open, the peer does not serve the channel, or the queue is full. */
  send (channel: ChannelName, payload: Uint8Array, options?: SendOptions): boolean
  /** Queue a frame built with allocFrame/encodeFrame (or received, to forward it unchanged). */
  sendFrame (frame: Buffer, options?: SendOptions): boolean
  close (reason?: CloseReason): void
}

const closed = (message: string): CanopyError => new CanopyError('NET_CLOSED', message)
const invalid = (message: string): CanopyError => new CanopyError('LINK_FRAME_INVALID', message)

/**
 * One link over one socket. A closure rather than a class: its private
 * state minifies to short names (class #fields keep theirs).
 */
export function createLink (o: LinkOptions): Link {
  const { socket, clock, identity, initiator, pool } = o
  const { handshakeMs, keepaliveMs, deadMs } = { handshakeMs: LINK_HANDSHAKE_MS, keepaliveMs: LINK_KEEPALIVE_MS, deadMs: LINK_DEAD_MS, ...o.timings }
  const counters: LinkCounters = { bytesIn: 0, bytesOut: 0, droppedFull: 0, droppedExpired: 0 }
  const decoder = createFrameDecoder(LINK_FRAME_BYTES_MAX, pool)
  const queue = createFrameQueue(LINK_QUEUE_FRAMES_MAX, LINK_QUEUE_BYTES_MAX)
  const urgentQueue = createFrameQueue(LINK_URGENT_FRAMES_MAX, LINK_QUEUE_BYTES_MAX)
  const served = new Set(o.channels.map(channelNumber))
  const extension = o.extension ?? Buffer.alloc(0)
  const closeListeners: Array<(link: Link) => void> = []
  let state: LinkState = 'handshake'
  let peerChannels: ReadonlySet<number> = new Set()
  let peerHello: Buffer | null = null
  let blocked = false
  let pingId = 0
  let pingSentMs = 0
  let pins = 0
  const now = (): number => clock.nowMs()
  let lastReceivedMs = now()
  let lastSentMs = lastReceivedMs
  let lastTrafficMs = lastReceivedMs
  let settle: { resolve: (l: Link) => void, reject: (e: CanopyError) => void } | null = null
  const ready = new Promise<Link>((resolve, reject) => { settle = { resolve, reject } })
  ready.catch(() => {}) // a failed handshake is reported to whoever awaits it; never unhandled
  assert(o.nonce.length === NONCE_BYTES, 'nonce size')
  const myHello = encodeHello({ version: LINK_VERSION, nonce: o.nonce, publicKey: identity.publicKey, listenPort: o.listenPort, channels: [...served], extension })
  const released = (frame: Buffer): void => { pool?.release(frame) }

  function enqueue (frame: Buffer, urgent?: boolean, expiresAtMs = 0): boolean {
    if (!(urgent === true ? urgentQueue : queue).push(frame, expiresAtMs)) {
      counters.droppedFull++
      return false
    }
    pool?.retain(frame) // held until the socket has written it, or it is dropped
    flush()
    return true
  }

  function flush (): void {
    if (state === 'closed' || socket.destroyed) return
    const ms = now()
    while (!blocked) {
      const e = urgentQueue.shift() ?? queue.shift()
      if (e === undefined) break
      const frame = e.frame
      if (e.until !== 0 && e.until < ms) {
        counters.droppedExpired++
        released(frame)
        continue
      }
      counters.bytesOut += frame.length
      lastSentMs = ms
      // write() false: the socket holds its high-water mark; 'drain' resumes us.
      // The callback runs once the socket is done with the bytes (written or failed): then the frame can be reused.
      if (!socket.write(frame, () => { released(frame) })) blocked = true
    }
  }

  function onData (chunk: Buffer): void {
    if (state === 'closed') return
    try {
      decoder.push(chunk, onFrameIn)
    } catch (err) {
      fail('protocol', CanopyError.from(err, 'LINK_FRAME_INVALID'))
    }
  }

  function onFrameIn (frame: Buffer): void {
    if (state === 'closed') return
    lastReceivedMs = now()
    counters.bytesIn += frame.length
    const channel = frame[4]!
    if (channel === 0) return onControl(frame)
    if (state !== 'open') throw invalid('data before the handshake')
    if (!served.has(channel)) throw invalid(`channel ${channel} not served`)
    lastTrafficMs = lastReceivedMs
    try {
      o.onFrame?.(link, frame)
    } finally {
      released(frame) // the decoder's reference; whoever kept the frame retained it
    }
  }

  function onControl (frame: Buffer): void {
    let m: ControlMessage
    try {
      m = decodeControl(frame.subarray(FRAME_HEADER_BYTES))
    } finally {
      released(frame) // control frames are decoded into fresh values; nobody keeps the frame
    }
    const handshaking = state === 'handshake'
    switch (m.type) {
      case 'hello': {
        if (!handshaking || peerHello !== null) throw invalid('a second hello')
        const id = nodeIdOf(m.publicKey)
        const expected = o.expectedNodeId
        const refused = m.version !== LINK_VERSION
          ? `link version ${m.version}`
          : id === identity.nodeId ? 'a link to ourselves'
            : expected !== undefined && id !== expected ? `not node ${expected}` : ''
        if (refused !== '') return refuse(refused)
        peerHello = Buffer.from(frame) // kept for the transcript: our own copy
        link.nodeId = id
        link.publicKey = m.publicKey
        link.peerListenPort = m.listenPort
        link.peerExtension = m.extension
        peerChannels = new Set(m.channels)
        enqueue(encodeProof(signDomain(identity.privateKey, PROOF_DOMAIN, transcript(initiator))), true)
        return
      }
      case 'proof':
        if (!handshaking || peerHello === null) throw invalid('early or second proof')
        if (!verifyDomain(link.publicKey, PROOF_DOMAIN, transcript(!initiator), m.signature)) return refuse('bad proof')
        state = 'open'
        link.openedAtMs = now()
        settle?.resolve(link)
        settle = null
        return
      case 'ping':
        if (state === 'open') enqueue(encodePing('pong', m.id), true)
        return
      case 'pong':
        if (m.id === pingId && pingSentMs > 0) {
          link.rttMs = now() - pingSentMs
          pingSentMs = 0
        }
        return
      case 'close': {
        // CLOSE_REASONS numbers its keys in order.
        const reason = (Object.keys(CLOSE_REASONS)[m.reason] ?? 'normal') as CloseReason
        fail(reason, closed(`peer closed (${reason})`))
      }
    }
  }

  const refuse = (message: string): void => { fail('handshake', new CanopyError('LINK_HANDSHAKE_FAILED', message)) }

  function transcript (signerIsInitiator: boolean): Buffer {
    const hellos = [myHello, peerHello!]
    if (!initiator) hellos.reverse()
    return proofTranscript(hellos[0]!, hellos[1]!, signerIsInitiator)
  }

  function tick (): void {
    if (state !== 'open') return
    const ms = now()
    if (ms - lastReceivedMs >= deadMs) return close('dead')
    if ((ms - lastSentMs >= keepaliveMs || link.rttMs === null) && (pingSentMs === 0 || ms - pingSentMs >= keepaliveMs)) {
      pingId = (pingId + 1) >>> 0
      pingSentMs = ms
      enqueue(encodePing('ping', pingId), true)
    }
  }

  function fail (reason: CloseReason, err: CanopyError): void {
    if (state === 'closed') return
    socket.destroy()
    terminate(reason, err)
  }

  function terminate (reason: CloseReason, err: CanopyError): void {
    if (state === 'closed') return
    const wasOpen = state === 'open'
    state = 'closed'
    link.closeReason = reason
    for (const t of timers) t.cancel()
    queue.clear(released)
    urgentQueue.clear(released)
    if (!socket.destroyed && !wasOpen) socket.destroy()
    if (settle !== null) {
      settle.reject(reason === 'normal' && err.code === 'NET_CLOSED' ? new CanopyError('LINK_HANDSHAKE_FAILED', `closed in handshake: ${err.message}`) : err)
      settle = null
    }
    for (const fn of closeListeners.splice(0)) fn(link)
  }

  function close (reason: CloseReason = 'normal'): void {
    if (state === 'closed') return
    if (socket.writable && !socket.destroyed) {
      try { socket.end(encodeClose(reason)) } catch { /* already failing */ }
      const t = clock.setTimeout(() => { socket.destroy() }, 1_000)
      socket.once('close', () => { t.cancel() })
    } else {
      socket.destroy()
    }
    terminate(reason, closed(`link closed (${reason})`))
  }

  /** Queue a frame built with allocFrame/encodeFrame (or received, to forward it unchanged). */
  function sendFrame (frame: Buffer, options: SendOptions = {}): boolean {
    if (state !== 'open' || frame.length < FRAME_HEADER_BYTES || !peerChannels.has(frame[4]!)) return false
    lastTrafficMs = now()
    return enqueue(frame, options.urgent, options.expiresAtMs)
  }

  // Set once (at the handshake, the close) or rarely: plain fields; what changes on every frame: getters.
  const link: { -readonly [K in keyof Link]: Link[K] } = {
    get state () { return state },
    get open (): boolean { return state === 'open' },
    nodeId: '',
    publicKey: Buffer.alloc(0),
    peerListenPort: 0,
    peerExtension: Buffer.alloc(0),
    extension,
    rttMs: null,
    closeReason: null,
    remoteAddress: socket.remoteAddress ?? '',
    counters,
    ready,
    get lastTrafficMs (): number { return lastTrafficMs },
    openedAtMs: 0,
    initiator,
    get queuedBytes (): number { return queue.bytes + urgentQueue.bytes },
    get queuedFrames (): number { return queue.length + urgentQueue.length },
    get pinned (): boolean { return pins > 0 },
    pin (): void { pins++ },
    unpin (): void { pins = Math.max(0, pins - 1) },
    serves: (channel: ChannelName): boolean => peerChannels.has(channelNumber(channel)),
    onClose (fn: (link: Link) => void): void {
      if (state === 'closed') fn(link)
      else closeListeners.push(fn)
    },
    send: (channel: ChannelName, payload: Uint8Array, options?: SendOptions): boolean => sendFrame(encodeFrame(channelNumber(channel), payload), options),
    sendFrame,
    close
  }

  socket.setNoDelay?.(true)
  socket.on('data', onData)
  socket.on('drain', () => { blocked = false; flush() })
  socket.on('end', () => { terminate('normal', closed('peer ended')) })
  socket.on('close', () => { terminate('normal', closed('closed')) })
  socket.on('error', (err: Error) => { terminate('normal', CanopyError.from(err, 'NET_CLOSED', 'socket')) })
  const timers: Timer[] = [clock.setTimeout(() => {
    if (state === 'handshake') fail('handshake', new CanopyError('TIMEOUT', `handshake over ${handshakeMs} ms`))
  }, handshakeMs), clock.setInterval(tick, Math.max(10, Math.floor(Math.min(keepaliveMs, deadMs) / 4)))]
  enqueue(myHello, true)
  return link
}
