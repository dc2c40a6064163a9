// The source's side of chunk signing: hashes of consecutive chunks are
// gathered into a batch, which is signed (ed25519, domain-separated) at the
// end of each ingest write (at most every STREAM_SIG_BATCH_MIN_INTERVAL_MS),
// when it holds STREAM_SIG_BATCH_CHUNKS_MAX hashes, or STREAM_SIG_BATCH_MS
// after its first chunk, whichever comes first. One signature per batch, one verify
// per batch per node; each chunk then costs one SHA-256.
//
// The batch also carries the source's bitrate estimate (bytes/s over the
// last BITRATE_WINDOW_MS), which every node uses to size its children.

import type { KeyObject } from 'node:crypto'
import { assert } from '../errors'
import type { Clock, Timer } from '../hal'
import { STREAM_SIG_BATCH_CHUNKS_MAX, STREAM_SIG_BATCH_MIN_INTERVAL_MS, STREAM_SIG_BATCH_MS } from '../limits'
import { BATCH_DOMAIN, type StreamCrypto } from './batches'
import { encodeSig, sigBody } from './wire'

const BITRATE_WINDOW_MS = 2_000

export class BatchSigner {
  private hashes: Buffer[] = []
  private firstSeq = 0
  private timer: Timer | null = null
  /** [ms, bytes] of recent chunks, for the bitrate estimate. */
  private readonly window: Array<[number, number]> = []
  private windowBytes = 0
  private lastSignedMs = -Infinity
  batches = 0

  constructor (
    private readonly streamId: string,
    private readonly key: KeyObject,
    private readonly clock: Clock,
    private readonly crypto: StreamCrypto,
    private readonly onBatch: (frame: Buffer, bitrate: number) => void,
    private readonly batchMs = STREAM_SIG_BATCH_MS,
    private readonly countMax = STREAM_SIG_BATCH_CHUNKS_MAX
  ) {
    assert(countMax >= 1 && countMax <= STREAM_SIG_BATCH_CHUNKS_MAX, 'batch size within the wire bound')
  }

  /** Bytes per second over the recent window (0 until there is a window). */
  get bitrate (): number {
    if (this.window.length < 2) return 0
    const span = this.window[this.window.length - 1]![0] - this.window[0]![0]
    // The first chunk opens the window; the bytes after it arrived over the span.
    return span <= 0 ? 0 : Math.round((this.windowBytes - this.window[0]![1]) / Math.max(span, 250) * 1000)
  }

  /** Note chunk seq (consecutive from the first) with its hash and media bytes. */
  add (seq: number, hash: Buffer, bytes: number): void {
    const now = this.clock.nowMs()
    this.window.push([now, bytes])
    this.windowBytes += bytes
    while (this.window.length > 1 && now - this.window[0]![0] > BITRATE_WINDOW_MS) this.windowBytes -= this.window.shift()![1]
    if (this.hashes.length === 0) {
      this.firstSeq = seq
      this.timer = this.clock.setTimeout(() => { this.timer = null; this.flush() }, this.batchMs)
    }
    assert(seq === this.firstSeq + this.hashes.length, 'batched chunks are consecutive')
    this.hashes.push(hash)
    if (this.hashes.length >= this.countMax) this.flush()
  }

  /**
   * The input paused (the end of one ingest write): sign now rather than on
   * the timer, so a chunk does not wait for its batch, unless we signed less
   * than STREAM_SIG_BATCH_MIN_INTERVAL_MS ago (tiny writes must not cost a
   * signature each; the timer covers them).
   */
  pause (): void {
    if (this.hashes.length > 0 && this.clock.nowMs() - this.lastSignedMs >= STREAM_SIG_BATCH_MIN_INTERVAL_MS) this.flush()
  }

  /** Sign what is gathered now (on batch full, on the timer, at the end of the stream). */
  flush (): void {
    this.timer?.cancel()
    this.timer = null
    if (this.hashes.length === 0) return
    const bitrate = this.bitrate
    const body = sigBody(this.streamId, this.firstSeq, bitrate, this.hashes)
    const signature = this.crypto.sign(this.key, BATCH_DOMAIN, body)
    this.hashes = []
    this.batches++
    this.lastSignedMs = this.clock.nowMs()
    this.onBatch(encodeSig(body, signature), bitrate)
  }

  close (): void {
    this.timer?.cancel()
    this.timer = null
  }
}
