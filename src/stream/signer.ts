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

export type BatchSigner = ReturnType<typeof createBatchSigner>

export function createBatchSigner (
  streamId: string,
  key: KeyObject,
  clock: Clock,
  crypto: StreamCrypto,
  onBatch: (frame: Buffer, bitrate: number) => void,
  batchMs = STREAM_SIG_BATCH_MS,
  countMax = STREAM_SIG_BATCH_CHUNKS_MAX
) {
  assert(countMax >= 1 && countMax <= STREAM_SIG_BATCH_CHUNKS_MAX, 'batch size')
  let hashes: Buffer[] = []
  let firstSeq = 0
  let timer: Timer | null = null
  /** [ms, bytes] of recent chunks, for the bitrate estimate. */
  const window: Array<[number, number]> = []
  let windowBytes = 0
  let lastSignedMs = -Infinity

  /** Bytes per second over the recent window (0 until there is a window). */
  function bitrate (): number {
    const span = window.length < 2 ? 0 : window[window.length - 1]![0] - window[0]![0]
    // The first chunk opens the window; the bytes after it arrived over the span.
    return span <= 0 ? 0 : Math.round((windowBytes - window[0]![1]) / Math.max(span, 250) * 1000)
  }

  /** Sign what is gathered now (on batch full, on the timer, at the end of the stream). */
  function flush (): void {
    timer?.cancel()
    timer = null
    if (hashes.length === 0) return
    const rate = bitrate()
    const body = sigBody(streamId, firstSeq, rate, hashes)
    const signature = crypto.sign(key, BATCH_DOMAIN, body)
    hashes = []
    lastSignedMs = clock.nowMs()
    onBatch(encodeSig(body, signature), rate)
  }

  return {
    get bitrate (): number { return bitrate() },
    flush,

    /** Note chunk seq (consecutive from the first) with its hash and media bytes. */
    add (seq: number, hash: Buffer, bytes: number): void {
      const now = clock.nowMs()
      window.push([now, bytes])
      windowBytes += bytes
      while (window.length > 1 && now - window[0]![0] > BITRATE_WINDOW_MS) windowBytes -= window.shift()![1]
      if (hashes.length === 0) {
        firstSeq = seq
        timer = clock.setTimeout(() => { timer = null; flush() }, batchMs)
      }
      assert(seq === firstSeq + hashes.length, 'consecutive chunks')
      hashes.push(hash)
      if (hashes.length >= countMax) flush()
    },

    /**
     * The input paused (the end of one ingest write): sign now rather than on
     * the timer, so a chunk does not wait for its batch, unless we signed less
     * than STREAM_SIG_BATCH_MIN_INTERVAL_MS ago (tiny writes must not cost a
     * signature each; the timer covers them).
     */
    pause (): void {
      if (hashes.length > 0 && clock.nowMs() - lastSignedMs >= STREAM_SIG_BATCH_MIN_INTERVAL_MS) flush()
    },

    close (): void {
      timer?.cancel()
      timer = null
    }
  }
}
