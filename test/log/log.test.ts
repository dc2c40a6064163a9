import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../src/errors'
import { createLogger } from '../../src/log'
import { LOG_LINES_BURST_MAX, LOG_LINES_PER_SECOND_MAX, LOG_LINE_BYTES_MAX } from '../../src/limits'

function capture (level: 'debug' | 'info' | 'warn' | 'error' = 'info') {
  const lines: string[] = []
  let now = 0
  const logger = createLogger({ level, nowMs: () => now, wallMs: () => Date.UTC(2026, 0, 1), write: (l) => lines.push(l) })
  return { logger, lines, advance: (ms: number) => { now += ms } }
}

test('one JSON object per line with time, level, subsystem and fields', () => {
  const { logger, lines } = capture()
  logger.child('ssdp').warn('datagram dropped', { from: '10.0.0.9', err: new CanopyError('INPUT_INVALID', 'bad') })
  logger.debug('not shown at info')
  assert.is(lines.length, 1)
  assert.not.ok(lines[0]!.includes('\n'))
  const o = JSON.parse(lines[0]!)
  assert.equal(o, { time: '2026-01-01T00:00:00.000Z', level: 'warn', sub: 'ssdp', msg: 'datagram dropped', from: '10.0.0.9', err: { code: 'INPUT_INVALID', message: 'bad' } })
})

test('fields cannot overwrite the record keys; huge lines are truncated', () => {
  const { logger, lines } = capture()
  logger.info('m', { level: 'forged', msg: 'forged', big: 'x'.repeat(LOG_LINE_BYTES_MAX * 2) })
  const o = JSON.parse(lines[0]!)
  assert.is(o.level, 'info')
  assert.is(o.msg, 'm')
  assert.is(o.truncated, true)
  assert.ok(lines[0]!.length <= LOG_LINE_BYTES_MAX)
})

test('a flood is rate limited, and the count of dropped lines is reported', () => {
  const { logger, lines, advance } = capture()
  for (let i = 0; i < LOG_LINES_BURST_MAX + 500; i++) logger.warn('flood')
  assert.is(lines.length, LOG_LINES_BURST_MAX)
  advance(1000)
  logger.info('after')
  const report = JSON.parse(lines[LOG_LINES_BURST_MAX]!)
  assert.is(report.dropped, 500)
  assert.is(JSON.parse(lines.at(-1)!).msg, 'after')
  assert.ok(LOG_LINES_PER_SECOND_MAX > 0)
})

test('unserializable fields do not throw', () => {
  const { logger, lines } = capture()
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  logger.info('cyclic', { cyclic, n: 10n })
  assert.is(JSON.parse(lines[0]!).unserializable, true)
})

test.run()
