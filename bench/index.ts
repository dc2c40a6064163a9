// npm run bench [-- NAME...]: every benchmark table, or those whose name
// contains one of the arguments. Figures are medians and ratios against a
// baseline measured in the same run; the machine is shared and noisy.

import { flashCacheBench } from './flash-cache'
import { foundationBench } from './foundation'
import { groupsBench } from './groups'
import { houseBench, servingBench } from './house'
import { discoveryBench } from './discovery'
import { protocolBench } from './protocol'
import { streamBench } from './stream'
import { formatTable, type Bench } from './table'

const BENCHES: Bench[] = [
  foundationBench,
  discoveryBench,
  protocolBench,
  flashCacheBench,
  streamBench,
  groupsBench,
  servingBench,
  houseBench
]

async function main (): Promise<void> {
  const wanted = process.argv.slice(2)
  const chosen = BENCHES.filter((b) => wanted.length === 0 || wanted.some((w) => b.name.includes(w)))
  let missed = 0
  for (const b of chosen) {
    const rows = await b.run()
    missed += rows.filter((r) => r.ok === false).length
    console.log(formatTable(b.name, rows))
  }
  console.log(`\n${missed === 0 ? 'every target met' : `${missed} target(s) missed`}`)
}

main().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1) })
