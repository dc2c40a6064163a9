// Content references and piece ranges: parsing, merging, coverage, a seeded
// property check of covers/intersects against plain sets.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../src/errors'
import { createSeededRandom } from '../../src/hal'
import { PIECE_RANGES_COUNT_MAX } from '../../src/limits'
import { covers, formatPieceText, intersects, normalizeRanges, parseContentRef, parsePieceText, unionRanges, type PieceRanges } from '../../src/protocol'
import { trimRanges } from '../../src/protocol/content'
import { testSeed } from '../helpers/seed'

const refused = (f: () => unknown): boolean => { try { f(); return false } catch (err) { return CanopyError.is(err, 'INPUT_INVALID') } }

test('content refs: 64-hex ids (lowercased) or http(s) URLs', () => {
  assert.is(parseContentRef('AB'.repeat(32)), 'ab'.repeat(32))
  assert.is(parseContentRef('https://example.com/a b'.replace(' ', '%20')), 'https://example.com/a%20b')
  for (const bad of ['ab', 'ftp://x/y', 'http://', `https://x/${'a'.repeat(400)}`, 'http://x/a b']) assert.ok(refused(() => parseContentRef(bad)), bad)
})

test('piece text, merging and trimming', () => {
  assert.equal(parsePieceText('0-9, 20,21-22,5'), [[0, 10], [20, 23]])
  assert.is(formatPieceText([[0, 10], [20, 21]]), '0-9,20')
  assert.is(formatPieceText(null), 'all')
  for (const bad of ['', '9-1', 'a', '-1', '1-2-3']) assert.ok(refused(() => parsePieceText(bad)), bad)
  const many = Array.from({ length: PIECE_RANGES_COUNT_MAX + 5 }, (_, i) => [i * 3, i * 3 + 1] as [number, number])
  assert.is(normalizeRanges(many), null)
  assert.equal(trimRanges(many), many.slice(0, PIECE_RANGES_COUNT_MAX))
  assert.equal(unionRanges([[[0, 2]], [[2, 5]]]), [[0, 5]])
  assert.is(unionRanges([[[0, 2]], null]), null)
})

test('property: covers and intersects agree with sets of pieces', () => {
  const rnd = createSeededRandom(testSeed('ranges'))
  const randomSet = (): PieceRanges => normalizeRanges(Array.from({ length: rnd.int(6) }, () => { const a = rnd.int(60); return [a, a + 1 + rnd.int(12)] as [number, number] }))!
  const expand = (r: PieceRanges): Set<number> => new Set(r.flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + i)))
  for (let i = 0; i < 3000; i++) {
    const a = randomSet(); const b = randomSet()
    const sa = expand(a); const sb = expand(b)
    assert.is(covers(a, b), [...sb].every((x) => sa.has(x)), `covers ${JSON.stringify(a)} ${JSON.stringify(b)}`)
    assert.is(intersects(a, b), [...sb].some((x) => sa.has(x)), `intersects ${JSON.stringify(a)} ${JSON.stringify(b)}`)
  }
  assert.ok(covers(null, [[0, 5]]) && !covers([[0, 5]], null) && covers(null, null))
})

test.run()
