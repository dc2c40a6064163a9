import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseArgs, type FlagSpec } from '../../src/cli/args'
import { CanopyError } from '../../src/errors'

const SPECS: FlagSpec[] = [
  { name: 'out', value: 'F', help: '' },
  { name: 'trust', value: 'K', repeatable: true, help: '' },
  { name: 'json', help: '' }
]

test('values, booleans, repeatable flags, positionals, --', () => {
  const a = parseArgs(['file.bin', '--out', 'x', '--trust=a', '--json', '--trust', 'b', '--', '--not-a-flag'], SPECS)
  assert.equal(a.flags, { out: 'x', trust: ['a', 'b'], json: true })
  assert.equal(a.positionals, ['file.bin', '--not-a-flag'])
  assert.equal(parseArgs(['-'], SPECS).positionals, ['-'])
})

test('usage errors', () => {
  const bad: string[][] = [['--nope'], ['--out'], ['--json=1'], ['--out', 'a', '--out', 'b'], ['-x'], Array(300).fill('a')]
  for (const argv of bad) {
    assert.throws(() => parseArgs(argv, SPECS), (e: unknown) => CanopyError.is(e, 'USAGE'), argv.slice(0, 4).join(' '))
  }
})

test.run()
