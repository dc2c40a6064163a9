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
import { FRAME_HEADER_BYTES, FrameDecoder, encodeFrame } from './frame'
import type { FramePool } from './pool'
import { FrameQueue } from './queue'

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

export const DEFAULT_LINK_TIMINGS: LinkTimings = { handshakeMs: LINK_HANDSHAKE_MS, keepaliveMs: LINK_KEEPALIVE_MS, deadMs: LINK_DEAD_MS }

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

const closed = (message: string): CanopyError => new CanopyError('NET_CLOSED', message)

export class Link {
  state: LinkState = 'handshake'
  /** Set when the handshake completes. */
  nodeId = ''
  publicKey: Buffer = Buffer.alloc(0)
  peerListenPort = 0
  peerChannels: ReadonlySet<number> = new Set()
  peerExtension: Buffer = Buffer.alloc(0)
  /** The extension this side sent in its hello (groups find their key share's secret by it). */
  readonly extension: Buffer
  /** Latest ping round trip; null until one completes. */
  rttMs: number | null = null
  closeReason: CloseReason | null = null
  readonly remoteAddress: string
  readonly counters: LinkCounters = { bytesIn: 0, bytesOut: 0, droppedFull: 0, droppedExpired: 0 }
  readonly ready: Promise<Link>
  /** Frames on every channel but the link's own (set by the host). */
  onFrame: (link: Link, frame: Buffer) => void = () => {}
  /** Monotonic ms of the last frame received and of the last channel frame either way. */
  lastReceivedMs: number
  lastTrafficMs: number
  /** Monotonic ms the handshake completed. */
  openedAtMs = 0

  readonly #o: LinkOptions
  readonly #socket: StreamSocket
  readonly #clock: Clock
  readonly #decoder: FrameDecoder
  readonly #queue = new FrameQueue(LINK_QUEUE_FRAMES_MAX, LINK_QUEUE_BYTES_MAX)
  readonly #urgent = new FrameQueue(LINK_URGENT_FRAMES_MAX, LINK_QUEUE_BYTES_MAX)
  readonly #served: ReadonlySet<number>
  readonly #myHello: Buffer
  #peerHello: Buffer | null = null
  #blocked = false
  #lastSentMs: number
  #pingId = 0
  #pingSentMs = 0
  #pins = 0
  readonly #timers: Timer[] = []
  readonly #closeListeners: Array<(link: Link) => void> = []
  #settle: { resolve: (l: Link) => void, reject: (e: CanopyError) => void } | null = null
  readonly #timings: LinkTimings

  constructor (options: LinkOptions) {
    const { socket, clock } = options
    this.#o = options
    this.#socket = socket
    this.#clock = clock
    const timings = this.#timings = { ...DEFAULT_LINK_TIMINGS, ...options.timings }
    this.#decoder = new FrameDecoder(LINK_FRAME_BYTES_MAX, options.pool)
    this.remoteAddress = socket.remoteAddress ?? ''
    this.#served = new Set(options.channels.map(channelNumber))
    this.extension = options.extension ?? Buffer.alloc(0)
    this.lastReceivedMs = this.#lastSentMs = this.lastTrafficMs = clock.nowMs()
    this.ready = new Promise((resolve, reject) => { this.#settle = { resolve, reject } })
    this.ready.catch(() => {}) // a failed handshake is reported to whoever awaits it; never unhandled
    assert(options.nonce.length === NONCE_BYTES, 'nonce size')
    this.#myHello = encodeHello({
      version: LINK_VERSION,
      nonce: options.nonce,
      publicKey: options.identity.publicKey,
      listenPort: options.listenPort,
      channels: [...this.#served],
      extension: this.extension
    })
    socket.setNoDelay?.(true)
    socket.on('data', (chunk: Buffer) => { this.#onData(chunk) })
    socket.on('drain', () => { this.#blocked = false; this.#flush() })
    socket.on('end', () => { this.#terminate('normal', closed('peer ended')) })
    socket.on('close', () => { this.#terminate('normal', closed('closed')) })
    socket.on('error', (err: Error) => { this.#terminate('normal', CanopyError.from(err, 'NET_CLOSED', 'socket')) })
    this.#timers.push(clock.setTimeout(() => {
      if (this.state === 'handshake') this.#fail('handshake', new CanopyError('TIMEOUT', `handshake over ${timings.handshakeMs} ms`))
    }, timings.handshakeMs), clock.setInterval(() => { this.#tick() }, Math.max(10, Math.floor(Math.min(timings.keepaliveMs, timings.deadMs) / 4))))
    this.#enqueue(this.#myHello, true)
  }

  get open (): boolean { return this.state === 'open' }
  get initiator (): boolean { return this.#o.initiator }
  get queuedBytes (): number { return this.#queue.bytes + this.#urgent.bytes }
  get queuedFrames (): number { return this.#queue.length + this.#urgent.length }
  get pinned (): boolean { return this.#pins > 0 }

  /** Keep the link from being closed as idle (static peers, parents, children). */
  pin (): void { this.#pins++ }
  unpin (): void { this.#pins = Math.max(0, this.#pins - 1) }

  /** Does the peer serve this channel? */
  serves (channel: ChannelName): boolean { return this.peerChannels.has(channelNumber(channel)) }

  onClose (fn: (link: Link) => void): void {
    if (this.state === 'closed') fn(this)
    else this.#closeListeners.push(fn)
  }

  /** Queue payload on a channel; false when the link is not open, the peer does not serve the channel, or the queue is full. */
  send (channel: ChannelName, payload: Uint8Array, options: SendOptions = {}): boolean {
    return this.sendFrame(encodeFrame(channelNumber(channel), payload), options)
  }

  /** Queue a frame built with allocFrame/encodeFrame (or received, to forward it unchanged). */
  sendFrame (frame: Buffer, options: SendOptions = {}): boolean {
    if (this.state !== 'open' || frame.length < FRAME_HEADER_BYTES || !this.peerChannels.has(frame[4]!)) return false
    this.lastTrafficMs = this.#clock.nowMs()
    return this.#enqueue(frame, options.urgent, options.expiresAtMs)
  }

  close (reason: CloseReason = 'normal'): void {
    if (this.state === 'closed') return
    const socket = this.#socket
    if (socket.writable && !socket.destroyed) {
      try { socket.end(encodeClose(reason)) } catch { /* already failing */ }
      const t = this.#clock.setTimeout(() => { socket.destroy() }, 1_000)
      socket.once('close', () => { t.cancel() })
    } else {
      socket.destroy()
    }
    this.#terminate(reason, closed(`link closed (${reason})`))
  }

  #enqueue (frame: Buffer, urgent?: boolean, expiresAtMs = 0): boolean {
    if (!(urgent === true ? this.#urgent : this.#queue).push(frame, expiresAtMs)) {
      this.counters.droppedFull++
      return false
    }
    this.#o.pool?.retain(frame) // held until the socket has written it, or it is dropped
    this.#flush()
    return true
  }

  readonly #released = (frame: Buffer): void => { this.#o.pool?.release(frame) }

  #flush (): void {
    const socket = this.#socket
    if (this.state === 'closed' || socket.destroyed) return
    const now = this.#clock.nowMs()
    while (!this.#blocked) {
      const e = this.#urgent.shift() ?? this.#queue.shift()
      if (e === undefined) break
      const frame = e.frame
      if (e.expiresAtMs !== 0 && e.expiresAtMs < now) {
        this.counters.droppedExpired++
        this.#released(frame)
        continue
      }
      this.counters.bytesOut += frame.length
      this.#lastSentMs = now
      // write() false: the socket holds its high-water mark; 'drain' resumes us.
      // The callback runs once the socket is done with the bytes (written or failed): then the frame can be reused.
      if (!socket.write(frame, () => { this.#released(frame) })) this.#blocked = true
    }
  }

  #onData (chunk: Buffer): void {
    if (this.state === 'closed') return
    try {
      this.#decoder.push(chunk, (frame) => { this.#onFrameIn(frame) })
    } catch (err) {
      this.#fail('protocol', CanopyError.from(err, 'LINK_FRAME_INVALID'))
    }
  }

  #onFrameIn (frame: Buffer): void {
    if (this.state === 'closed') return
    const now = this.#clock.nowMs()
    this.lastReceivedMs = now
    this.counters.bytesIn += frame.length
    const channel = frame[4]!
    if (channel === 0) {
      this.#onControl(frame)
      return
    }
    if (this.state !== 'open') throw invalid('data before the handshake')
    if (!this.#served.has(channel)) throw invalid(`channel ${channel} not served`)
    this.lastTrafficMs = now
    try {
      this.onFrame(this, frame)
    } finally {
      this.#released(frame) // the decoder's reference; whoever kept the frame retained it
    }
  }

  #onControl (frame: Buffer): void {
    let m: ControlMessage
    try {
      m = decodeControl(frame.subarray(FRAME_HEADER_BYTES))
    } finally {
      this.#released(frame) // control frames are decoded into fresh values; nobody keeps the frame
    }
    const handshaking = this.state === 'handshake'
    switch (m.type) {
      case 'hello': {
        if (!handshaking || this.#peerHello !== null) throw invalid('a second hello')
        const h = m.hello
        const id = nodeIdOf(h.publicKey)
        const expected = this.#o.expectedNodeId
        const refused = h.version !== LINK_VERSION
          ? `link version ${h.version}`
          : id === this.#o.identity.nodeId ? 'a link to ourselves'
            : expected !== undefined && id !== expected ? `not node ${expected}` : ''
        if (refused !== '') return this.#refuse(refused)
        this.#peerHello = Buffer.from(frame) // kept for the transcript: our own copy
        this.nodeId = id
        this.publicKey = h.publicKey
        this.peerListenPort = h.listenPort
        this.peerChannels = new Set(h.channels)
        this.peerExtension = h.extension
        this.#enqueue(encodeProof(signDomain(this.#o.identity.privateKey, PROOF_DOMAIN, this.#transcript(this.initiator))), true)
        return
      }
      case 'proof': {
        if (!handshaking || this.#peerHello === null) throw invalid('early or second proof')
        if (!verifyDomain(this.publicKey, PROOF_DOMAIN, this.#transcript(!this.initiator), m.signature)) {
          return this.#refuse('bad proof')
        }
        this.state = 'open'
        this.openedAtMs = this.#clock.nowMs()
        this.#settle?.resolve(this)
        this.#settle = null
        return
      }
      case 'ping':
        if (this.open) this.#enqueue(encodePing('pong', m.id), true)
        return
      case 'pong':
        if (m.id === this.#pingId && this.#pingSentMs > 0) {
          this.rttMs = this.#clock.nowMs() - this.#pingSentMs
          this.#pingSentMs = 0
        }
        return
      case 'close': {
        // CLOSE_REASONS numbers its keys in order.
        const reason = (Object.keys(CLOSE_REASONS)[m.reason] ?? 'normal') as CloseReason
        this.#socket.destroy()
        this.#terminate(reason, closed(`peer closed (${reason})`))
      }
    }
  }

  #refuse (message: string): void { this.#fail('handshake', new CanopyError('LINK_HANDSHAKE_FAILED', message)) }

  #transcript (signerIsInitiator: boolean): Buffer {
    const hellos = [this.#myHello, this.#peerHello!]
    if (!this.initiator) hellos.reverse()
    return proofTranscript(hellos[0]!, hellos[1]!, signerIsInitiator)
  }

  #tick (): void {
    if (!this.open) return
    const now = this.#clock.nowMs()
    const { keepaliveMs, deadMs } = this.#timings
    if (now - this.lastReceivedMs >= deadMs) return this.close('dead')
    if ((now - this.#lastSentMs >= keepaliveMs || this.rttMs === null) && (this.#pingSentMs === 0 || now - this.#pingSentMs >= keepaliveMs)) {
      this.#pingId = (this.#pingId + 1) >>> 0
      this.#pingSentMs = now
      this.#enqueue(encodePing('ping', this.#pingId), true)
    }
  }

  #fail (reason: CloseReason, err: CanopyError): void {
    if (this.state === 'closed') return
    this.#socket.destroy()
    this.#terminate(reason, err)
  }

  #terminate (reason: CloseReason, err: CanopyError): void {
    if (this.state === 'closed') return
    const wasOpen = this.open
    this.state = 'closed'
    this.closeReason = reason
    for (const t of this.#timers) t.cancel()
    this.#queue.clear(this.#released)
    this.#urgent.clear(this.#released)
    if (!this.#socket.destroyed && !wasOpen) this.#socket.destroy()
    if (this.#settle !== null) {
      this.#settle.reject(reason === 'normal' && err.code === 'NET_CLOSED' ? new CanopyError('LINK_HANDSHAKE_FAILED', `closed in handshake: ${err.message}`) : err)
      this.#settle = null
    }
    for (const fn of this.#closeListeners.splice(0)) fn(this)
  }
}

const invalid = (message: string): CanopyError => new CanopyError('LINK_FRAME_INVALID', message)
