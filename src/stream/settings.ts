// The stream subsystem's tunables, from config (src/config/schema.ts
// "stream") with the derived timings spelled out in one place.

import type { Config } from '../config'
import { STREAM_CHILDREN_MAX, STREAM_FIND_MS, STREAM_JOIN_STEP_MS } from '../limits'

export interface StreamSettings {
  /** Upload this node may spend relaying, bytes/s. */
  uploadBytesPerSec: number
  /** Children per stream at most. */
  childrenMax: number
  ringBytes: number
  /** A parent silent this long is dead. */
  deadAfterMs: number
  /** Parents send something to each child at least this often. */
  heartbeatMs: number
  /** Children report to their parent this often (their heartbeat upward). */
  reportMs: number
  /** Parents send a full STATUS (path, backups) this often. */
  statusMs: number
  /** A child silent this long is dropped. */
  childDeadMs: number
  /** A grandparent takes an orphan in its dead child's slot when that child is silent this long. */
  orphanSilenceMs: number
  playoutDelayMs: number
  lingerMs: number
  joinStepMs: number
  findMs: number
}

export function deriveSettings (s: { uploadBytesPerSec: number, childrenMax?: number, ringBytes: number, deadAfterMs: number, playoutDelayMs: number, lingerMs: number }): StreamSettings {
  const heartbeatMs = Math.max(10, Math.floor(s.deadAfterMs / 4))
  const reportMs = heartbeatMs * 2
  return {
    ...s,
    childrenMax: s.childrenMax ?? STREAM_CHILDREN_MAX,
    heartbeatMs,
    reportMs,
    statusMs: Math.max(heartbeatMs, 1_000),
    childDeadMs: Math.max(reportMs * 5, s.deadAfterMs * 2),
    orphanSilenceMs: Math.floor(reportMs * 1.5),
    joinStepMs: STREAM_JOIN_STEP_MS,
    findMs: STREAM_FIND_MS
  }
}

export function settingsFromConfig (c: Config['stream']): StreamSettings {
  return deriveSettings({
    uploadBytesPerSec: Math.floor(c.uploadKbps * 1000 / 8),
    childrenMax: c.childrenMax,
    ringBytes: c.ringBytes,
    deadAfterMs: c.deadAfterMs,
    playoutDelayMs: c.playoutDelayMs,
    lingerMs: c.lingerMs
  })
}
