// Runs uvu suites from TypeScript sources in one process, then exits with
// their status even if a test leaked a handle (and names the leak), under a
// global deadline so CI can never hang.
//
//   node -r esbuild-register test/run.ts [PATTERN...]   (default: every *.test.ts)
//   CANOPY_TEST_SKIP=lab   skip files whose path contains "lab"

import { parse } from 'uvu/parse'
import { run } from 'uvu/run'

// The whole suite takes ~6 min on a shared 2-core machine; a hang must fail well inside CI's 90.
const DEADLINE_MS = Number(process.env.CANOPY_TEST_DEADLINE_MS ?? 25 * 60_000)

async function mainRun (): Promise<void> {
  const patterns = process.argv.slice(2)
  const skip = (process.env.CANOPY_TEST_SKIP ?? '').split(',').filter((s) => s.length > 0)
  const { suites } = await parse('test', /\.test\.ts$/)
  const chosen = suites
    .filter((s) => patterns.length === 0 || patterns.some((p) => s.name.includes(p)))
    .filter((s) => !skip.some((p) => s.name.includes(p)))
    .sort((a, b) => a.name.localeCompare(b.name))
  if (chosen.length === 0) {
    console.error(`no test file matches ${patterns.join(' ')}`)
    process.exit(2)
  }
  const deadline = setTimeout(() => {
    console.error(`\ntests ran past ${DEADLINE_MS} ms: failing`)
    process.exit(1)
  }, DEADLINE_MS)
  deadline.unref()
  const started = Date.now()
  let finished = false
  // A test awaiting something that never comes, with nothing left to run, would end the process "successfully".
  process.on('beforeExit', () => {
    if (finished) return
    console.error('\ntests stopped before the end: a test awaited something that never happens')
    process.exit(1)
  })
  await run(chosen, { bail: false })
  finished = true
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0
  console.log(`${chosen.length} files in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  // Give sockets closed in the last test a moment, then report what is still open.
  setTimeout(() => {
    const handles = (process as unknown as { _getActiveHandles (): unknown[] })._getActiveHandles()
      .filter((h) => h !== process.stdout && h !== process.stderr && h !== process.stdin)
    if (handles.length > 0) console.error(`note: ${handles.length} handle(s) left open by tests: ${handles.map((h) => (h as object).constructor.name).join(', ')}`)
    process.exit(code)
  }, 100).unref()
}

mainRun().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
