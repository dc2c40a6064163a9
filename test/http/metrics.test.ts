import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Metrics } from '../../src/http'
import { METRIC_SERIES_COUNT_MAX } from '../../src/limits'
import { parsePrometheus } from '../helpers/prometheus'

test('counters and gauges render as parseable Prometheus text', () => {
  const m = new Metrics()
  const c = m.counter('canopy_test_total', 'A test counter\nwith a newline.', ['peer'])
  c.inc({ peer: 'a"b\\c\nd' })
  c.inc({ peer: 'x' }, 5)
  const g = m.gauge('canopy_test_bytes', 'A gauge.')
  m.onCollect(() => g.set(42))
  m.onCollect(() => { throw new Error('a broken collector') })
  const { samples, types } = parsePrometheus(m.render())
  assert.is(types.get('canopy_test_total'), 'counter')
  assert.is(types.get('canopy_test_bytes'), 'gauge')
  assert.equal(samples.find((s) => s.labels.peer === 'a"b\\c\nd')?.value, 1, 'labels escaped and recovered')
  assert.is(samples.find((s) => s.labels.peer === 'x')?.value, 5)
  assert.is(samples.find((s) => s.name === 'canopy_test_bytes')?.value, 42)
})

test('series per metric are bounded and refusals counted', () => {
  const m = new Metrics()
  const c = m.counter('canopy_many_total', 'Many.', ['k'])
  for (let i = 0; i < METRIC_SERIES_COUNT_MAX + 10; i++) c.inc({ k: i })
  const { samples } = parsePrometheus(m.render())
  assert.is(samples.filter((s) => s.name === 'canopy_many_total').length, METRIC_SERIES_COUNT_MAX)
  assert.is(samples.find((s) => s.name === 'canopy_metric_series_dropped_total')?.value, 10)
})

test('bad names and kind clashes are programming errors', () => {
  const m = new Metrics()
  assert.throws(() => m.counter('bad name', 'x'))
  m.counter('canopy_x_total', 'x')
  assert.throws(() => m.gauge('canopy_x_total', 'x'))
})

test.run()
