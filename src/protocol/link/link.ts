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
import { CanopyError } from '../../errors'
import type { Clock, StreamSocket, Timer } from '../../hal'
import { nodeIdOf } from '../../identity'
import {
  LINK_DEAD_MS, LINK_FRAME_BYTES_MAX, LINK_HANDSHAKE_MS, LINK_KEEPALIVE_MS,
  LINK_QUEUE_BYTES_MAX, LINK_QUEUE_FRAMES_MAX, LINK_URGENT_FRAMES_MAX
} from '../../limits'
import { channelNumber, type ChannelName } from './channels'
import {
  CLOSE_REASONS, LINK_VERSION, NONCE_BYTES, PROOF_DOMAIN, decodeControl, encodeClose, encodeHello, encodePing,
  encodeProof, proofTranscript, type CloseReason, type Hello
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
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
  /** Frames refused because the queue was full. */
  droppedFull: number
  /** Frames dropped at the head of the queue past their expiry. */
  droppedExpired: number
}

export type LinkState = 'handshake' | 'open' | 'closed'

export class Link {
  state: LinkState = 'handshake'
  /** Set when the handshake completes. */
  nodeId = ''
  publicKey: Buffer = Buffer.alloc(0)
  peerListenPort = 0
  peerChannels: ReadonlySet<number> = new Set()
  peerExtension: Buffer = Buffer.alloc(0)
  /** Latest ping round trip; null until one completes. */
  rttMs: number | null = null
  closeReason: CloseReason | null = null
  readonly remoteAddress: string
  readonly counters: LinkCounters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, droppedFull: 0, droppedExpired: 0 }
  readonly ready: Promise<Link>
  /** Frames on every channel but the link's own (set by the host). */
  onFrame: (link: Link, frame: Buffer) => void = () => {}
  /** Monotonic ms of the last frame received and of the last channel frame either way. */
  lastReceivedMs: number
  lastTrafficMs: number
  /** Monotonic ms the handshake completed. */
  openedAtMs = 0

  private readonly decoder: FrameDecoder
  private readonly queue = new FrameQueue(LINK_QUEUE_FRAMES_MAX, LINK_QUEUE_BYTES_MAX)
  private readonly urgent = new FrameQueue(LINK_URGENT_FRAMES_MAX, LINK_QUEUE_BYTES_MAX)
  private readonly servedChannels: ReadonlySet<number>
  private readonly myHello: Buffer
  private peerHello: Buffer | null = null
  private blocked = false
  private lastSentMs: number
  private pingId = 0
  private pingSentMs = 0
  private pins = 0
  private readonly timers: Timer[] = []
  private readonly closeListeners: Array<(link: Link) => void> = []
  private settle: { resolve: (l: Link) => void, reject: (e: CanopyError) => void } | null = null
  private readonly timings: LinkTimings

  constructor (private readonly options: LinkOptions) {
    const { socket, clock } = options
    this.timings = { ...DEFAULT_LINK_TIMINGS, ...options.timings }
    this.decoder = new FrameDecoder(LINK_FRAME_BYTES_MAX, options.pool)
    this.remoteAddress = socket.remoteAddress ?? ''
    this.servedChannels = new Set(options.channels.map(channelNumber))
    this.lastReceivedMs = this.lastSentMs = this.lastTrafficMs = clock.nowMs()
    this.ready = new Promise((resolve, reject) => { this.settle = { resolve, reject } })
    this.ready.catch(() => {}) // a failed handshake is reported to whoever awaits it; never unhandled
    const hello: Hello = {
      version: LINK_VERSION,
      nonce: options.nonce,
      publicKey: options.identity.publicKey,
      listenPort: options.listenPort,
      channels: [...this.servedChannels],
      extension: options.extension ?? Buffer.alloc(0)
    }
    if (hello.nonce.length !== NONCE_BYTES) throw new CanopyError('ASSERTION', 'link nonce is 32 bytes')
    this.myHello = encodeHello(hello)
    socket.setNoDelay?.(true)
    socket.on('data', (chunk: Buffer) => { this.onData(chunk) })
    socket.on('drain', () => { this.blocked = false; this.flush() })
    socket.on('end', () => { this.terminate('normal', new CanopyError('NET_CLOSED', 'the peer closed the link')) })
    socket.on('close', () => { this.terminate('normal', new CanopyError('NET_CLOSED', 'the link closed')) })
    socket.on('error', (err: Error) => { this.terminate('normal', CanopyError.from(err, 'NET_CLOSED', 'link socket error')) })
    this.timers.push(clock.setTimeout(() => {
      if (this.state === 'handshake') this.fail('handshake', new CanopyError('TIMEOUT', `link handshake took over ${this.timings.handshakeMs} ms`))
    }, this.timings.handshakeMs))
    const tick = Math.max(10, Math.floor(Math.min(this.timings.keepaliveMs, this.timings.deadMs) / 4))
    this.timers.push(clock.setInterval(() => { this.tick() }, tick))
    this.enqueue(this.myHello, { urgent: true })
  }

  get open (): boolean { return this.state === 'open' }
  get initiator (): boolean { return this.options.initiator }
  get queuedBytes (): number { return this.queue.bytes + this.urgent.bytes }
  get queuedFrames (): number { return this.queue.length + this.urgent.length }
  get pinned (): boolean { return this.pins > 0 }

  /** Keep the link from being closed as idle (static peers, parents, children). */
  pin (): void { this.pins++ }
  unpin (): void { this.pins = Math.max(0, this.pins - 1) }

  /** Does the peer serve this channel? */
  serves (channel: ChannelName): boolean { return this.peerChannels.has(channelNumber(channel)) }

  onClose (fn: (link: Link) => void): void {
    if (this.state === 'closed') fn(this)
    else this.closeListeners.push(fn)
  }

  /** Queue payload on a channel; false when the link is not open, the peer does not serve the channel, or the queue is full. */
  send (channel: ChannelName, payload: Uint8Array, options: SendOptions = {}): boolean {
    return this.sendFrame(encodeFrame(channelNumber(channel), payload), options)
  }

  /** Queue a frame built with allocFrame/encodeFrame (or received, to forward it unchanged). */
  sendFrame (frame: Buffer, options: SendOptions = {}): boolean {
    if (this.state !== 'open' || frame.length < FRAME_HEADER_BYTES || !this.peerChannels.has(frame[4]!)) return false
    this.lastTrafficMs = this.options.clock.nowMs()
    return this.enqueue(frame, options)
  }

  close (reason: CloseReason = 'normal'): void {
    if (this.state === 'closed') return
    const socket = this.options.socket
    if (socket.writable && !socket.destroyed) {
      try { socket.end(encodeClose(reason)) } catch { /* already failing */ }
      const t = this.options.clock.setTimeout(() => { socket.destroy() }, 1_000)
      socket.once('close', () => { t.cancel() })
    } else {
      socket.destroy()
    }
    this.terminate(reason, new CanopyError('NET_CLOSED', `link closed (${reason})`))
  }

  private enqueue (frame: Buffer, options: SendOptions): boolean {
    const q = options.urgent === true ? this.urgent : this.queue
    if (!q.push(frame, options.expiresAtMs ?? 0)) {
      this.counters.droppedFull++
      return false
    }
    this.options.pool?.retain(frame) // held until the socket has written it, or it is dropped
    this.flush()
    return true
  }

  private readonly released = (frame: Buffer): void => { this.options.pool?.release(frame) }

  private flush (): void {
    const socket = this.options.socket
    if (this.state === 'closed' || socket.destroyed) return
    const now = this.options.clock.nowMs()
    while (!this.blocked) {
      const e = this.urgent.shift() ?? this.queue.shift()
      if (e === undefined) break
      if (e.expiresAtMs !== 0 && e.expiresAtMs < now) {
        this.counters.droppedExpired++
        this.released(e.frame)
        continue
      }
      this.counters.framesOut++
      this.counters.bytesOut += e.frame.length
      this.lastSentMs = now
      // write() false: the socket holds its high-water mark; 'drain' resumes us.
      // The callback runs once the socket is done with the bytes (written or failed): then the frame can be reused.
      const frame = e.frame
      if (!socket.write(frame, () => { this.released(frame) })) this.blocked = true
    }
  }

  private onData (chunk: Buffer): void {
    if (this.state === 'closed') return
    try {
      this.decoder.push(chunk, (frame) => { this.onFrameIn(frame) })
    } catch (err) {
      this.fail('protocol', CanopyError.from(err, 'LINK_FRAME_INVALID'))
    }
  }

  private onFrameIn (frame: Buffer): void {
    if (this.state === 'closed') return
    const now = this.options.clock.nowMs()
    this.lastReceivedMs = now
    this.counters.framesIn++
    this.counters.bytesIn += frame.length
    const channel = frame[4]!
    if (channel === 0) {
      this.onControl(frame)
      return
    }
    if (this.state !== 'open') throw new CanopyError('LINK_FRAME_INVALID', 'channel frame before the handshake completed')
    if (!this.servedChannels.has(channel)) throw new CanopyError('LINK_FRAME_INVALID', `frame on channel ${channel}, which this side does not serve`)
    this.lastTrafficMs = now
    try {
      this.onFrame(this, frame)
    } finally {
      this.released(frame) // the decoder's reference; whoever kept the frame retained it
    }
  }

  private onControl (frame: Buffer): void {
    let m: ReturnType<typeof decodeControl>
    try {
      m = decodeControl(frame.subarray(FRAME_HEADER_BYTES))
    } finally {
      this.released(frame) // control frames are decoded into fresh values; nobody keeps the frame
    }
    switch (m.type) {
      case 'hello': {
        if (this.state !== 'handshake' || this.peerHello !== null) throw new CanopyError('LINK_FRAME_INVALID', 'a second hello')
        const h = m.hello
        if (h.version !== LINK_VERSION) return this.fail('handshake', new CanopyError('LINK_HANDSHAKE_FAILED', `peer speaks link version ${h.version}, we speak ${LINK_VERSION}`))
        const id = nodeIdOf(h.publicKey)
        if (id === this.options.identity.nodeId) return this.fail('handshake', new CanopyError('LINK_HANDSHAKE_FAILED', 'a link to ourselves'))
        if (this.options.expectedNodeId !== undefined && id !== this.options.expectedNodeId) {
          return this.fail('handshake', new CanopyError('LINK_HANDSHAKE_FAILED', `expected node ${this.options.expectedNodeId}, the peer is ${id}`))
        }
        this.peerHello = Buffer.from(frame) // kept for the transcript: our own copy
        this.nodeId = id
        this.publicKey = h.publicKey
        this.peerListenPort = h.listenPort
        this.peerChannels = new Set(h.channels)
        this.peerExtension = h.extension
        const signature = signDomain(this.options.identity.privateKey, PROOF_DOMAIN, this.transcript(this.initiator))
        this.enqueue(encodeProof(signature), { urgent: true })
        return
      }
      case 'proof': {
        if (this.state !== 'handshake' || this.peerHello === null) throw new CanopyError('LINK_FRAME_INVALID', 'a proof before the hello, or twice')
        if (!verifyDomain(this.publicKey, PROOF_DOMAIN, this.transcript(!this.initiator), m.signature)) {
          return this.fail('handshake', new CanopyError('LINK_HANDSHAKE_FAILED', `node ${this.nodeId} sent a proof that does not verify`))
        }
        this.state = 'open'
        this.openedAtMs = this.options.clock.nowMs()
        this.settle?.resolve(this)
        this.settle = null
        return
      }
      case 'ping':
        if (this.state === 'open') this.enqueue(encodePing('pong', m.id), { urgent: true })
        return
      case 'pong':
        if (m.id === this.pingId && this.pingSentMs > 0) {
          this.rttMs = this.options.clock.nowMs() - this.pingSentMs
          this.pingSentMs = 0
        }
        return
      case 'close': {
        const reason = (Object.keys(CLOSE_REASONS) as CloseReason[]).find((k) => CLOSE_REASONS[k] === m.reason) ?? 'normal'
        this.options.socket.destroy()
        this.terminate(reason, new CanopyError('NET_CLOSED', `the peer closed the link (${reason})`))
      }
    }
  }

  private transcript (signerIsInitiator: boolean): Buffer {
    const peer = this.peerHello!
    return this.initiator
      ? proofTranscript(this.myHello, peer, signerIsInitiator)
      : proofTranscript(peer, this.myHello, signerIsInitiator)
  }

  private tick (): void {
    if (this.state !== 'open') return
    const now = this.options.clock.nowMs()
    if (now - this.lastReceivedMs >= this.timings.deadMs) {
      this.close('dead')
      return
    }
    if (now - this.lastSentMs >= this.timings.keepaliveMs || this.rttMs === null) {
      if (this.pingSentMs === 0 || now - this.pingSentMs >= this.timings.keepaliveMs) {
        this.pingId = (this.pingId + 1) >>> 0
        this.pingSentMs = now
        this.enqueue(encodePing('ping', this.pingId), { urgent: true })
      }
    }
  }

  private fail (reason: CloseReason, err: CanopyError): void {
    if (this.state === 'closed') return
    this.options.socket.destroy()
    this.terminate(reason, err)
  }

  private terminate (reason: CloseReason, err: CanopyError): void {
    if (this.state === 'closed') return
    const wasOpen = this.state === 'open'
    this.state = 'closed'
    this.closeReason = reason
    for (const t of this.timers) t.cancel()
    this.queue.clear(this.released)
    this.urgent.clear(this.released)
    if (!this.options.socket.destroyed && !wasOpen) this.options.socket.destroy()
    if (this.settle !== null) {
      this.settle.reject(reason === 'normal' && err.code === 'NET_CLOSED' ? new CanopyError('LINK_HANDSHAKE_FAILED', `the peer closed during the handshake: ${err.message}`) : err)
      this.settle = null
    }
    for (const fn of this.closeListeners.splice(0)) fn(this)
  }
}
