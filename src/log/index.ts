// Logs: one JSON object per line ({time, level, sub, msg, ...fields}), rate
// limited by a token bucket so a flood of bad packets cannot flood the log;
// dropped lines are counted and reported when logging resumes.

import { CanopyError } from '../errors'
import { LOG_LINE_BYTES_MAX, LOG_LINES_BURST_MAX, LOG_LINES_PER_SECOND_MAX } from '../limits'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export type LogFields = Record<string, unknown>

export interface Logger {
  debug (msg: string, fields?: LogFields): void
  info (msg: string, fields?: LogFields): void
  warn (msg: string, fields?: LogFields): void
  error (msg: string, fields?: LogFields): void
  /** A logger for one subsystem. */
  child (sub: string): Logger
}

export interface LogSink {
  level: LogLevel
  /** Monotonic ms (rate limit) and wall ms (timestamps). */
  nowMs (): number
  wallMs (): number
  write (line: string): void
}

interface Bucket { tokens: number, at: number, dropped: number }

const toJson = (v: unknown): unknown => {
  if (v instanceof CanopyError) return { code: v.code, message: v.message }
  if (v instanceof Error) return { name: v.name, message: v.message }
  if (typeof v === 'bigint') return v.toString()
  return v
}

function line (sink: LogSink, level: LogLevel, sub: string, msg: string, fields: LogFields | undefined): string {
  const base = { time: new Date(sink.wallMs()).toISOString(), level, sub, msg }
  let text: string
  try {
    // The fixed fields first, and fields cannot overwrite them.
    text = JSON.stringify({ ...base, ...fields, ...base }, (_k, v: unknown) => toJson(v))
  } catch {
    text = JSON.stringify({ ...base, unserializable: true })
  }
  return Buffer.byteLength(text) > LOG_LINE_BYTES_MAX ? JSON.stringify({ ...base, msg: msg.slice(0, 512), truncated: true }) : text
}

export function createLogger (sink: LogSink, sub = 'agent'): Logger {
  const bucket: Bucket = { tokens: LOG_LINES_BURST_MAX, at: sink.nowMs(), dropped: 0 }
  return make(sink, sub, bucket)
}

function make (sink: LogSink, sub: string, bucket: Bucket): Logger {
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[level] < RANK[sink.level]) return
    const now = sink.nowMs()
    bucket.tokens = Math.min(LOG_LINES_BURST_MAX, bucket.tokens + ((now - bucket.at) / 1000) * LOG_LINES_PER_SECOND_MAX)
    bucket.at = now
    if (bucket.tokens < 1) { bucket.dropped++; return }
    bucket.tokens--
    if (bucket.dropped > 0) {
      sink.write(line(sink, 'warn', 'log', 'lines dropped (rate limit)', { dropped: bucket.dropped }))
      bucket.dropped = 0
    }
    sink.write(line(sink, level, sub, msg, fields))
  }
  const logger = { child: (name: string) => make(sink, name, bucket) } as Logger
  for (const level of Object.keys(RANK) as LogLevel[]) logger[level] = (m, f) => { emit(level, m, f) }
  return logger
}

/** A logger that discards everything (tests, simulations with thousands of nodes). */
export const silentLogger: Logger = {
  debug () {}, info () {}, warn () {}, error () {}, child: () => silentLogger
}

/** A logger that keeps lines in memory, for tests that assert on logs. */
export function memoryLogger (level: LogLevel = 'debug'): { logger: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  let t = 0
  const logger = createLogger({ level, nowMs: () => t++, wallMs: () => 0, write: (l) => { lines.push(JSON.parse(l) as Record<string, unknown>) } })
  return { logger, lines }
}
