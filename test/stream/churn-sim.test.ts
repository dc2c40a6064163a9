// The 1 000-node simulation (issue 5): heterogeneous upload budgets, an
// 8 Mbit/s stream, 10 % of interior nodes killed per minute without warning,
// 1 % loss. The figures are simulated time, deterministic for a seed; the
// benchmark prints them, this test holds the design targets.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { percentile, runChurn } from '../helpers/churn-sim'
import { testSeed } from '../helpers/seed'

test('1 000 nodes under churn and loss: continuity, no loss, no loops, depth, constant source upload, repairs under a second', async () => {
  const seed = testSeed('stream churn simulation', 1)
  const r = await runChurn({ seed })
  const line = `continuity ${(r.continuity * 100).toFixed(3)} % (churn phase ${(r.churnContinuity * 100).toFixed(3)} %), depth mean ${r.depthMean.toFixed(1)} max ${r.depthMax}, ` +
    `source ${(r.sourceUploadBytesPerSec / r.bitrateBytesPerSec).toFixed(2)}× bitrate, ${r.killed} killed, ${r.reattaches} re-attaches p50 ${percentile(r.attachMs, 50).toFixed(0)} ms p95 ${percentile(r.attachMs, 95).toFixed(0)} ms, ` +
    `control ${(r.controlOverhead * 100).toFixed(2)} %, ${(r.wallMs / 1000).toFixed(1)} s wall`
  process.stdout.write(`  [${line}]\n`)
  assert.ok(r.members >= 1000)
  assert.ok(r.killed >= 30, 'churn happened')
  // The target is for the churn phase; the flash crowd (1 000 joins in 20 s) before it is reported beside it
  // (99.6-100 % over seeds 1-7) and held to a looser bound.
  assert.ok(r.churnContinuity >= 0.999, line)
  assert.ok(r.continuity >= 0.995, line)
  assert.is(r.churnMissingForSurvivors, 0, 'survivors lose no chunk to churn')
  assert.is(r.orphanedChains, 0, 'every attached node reaches the source through its parents: no loops')
  assert.ok(r.depthMax <= 16 && r.depthMean <= 8, line)
  assert.ok(r.sourceUploadBytesPerSec <= 4 * r.bitrateBytesPerSec * 1.02, 'the source sends to its 4 children only')
  assert.ok(percentile(r.attachMs, 95) <= 1000, line)
  assert.ok(r.controlOverhead < 0.01, line)
})

test.run()
