// Invitations and membership chains: valid, expired, tampered, foreign,
// revoked, and chains only admins may extend.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../src/errors'
import { formatInvitation, issue, newGroup, parseInvitation, ROLES, verifyChain } from '../../src/groups/cert'
import { createSeededRandom } from '../../src/hal'
import { fixtureGroup, identity } from '../helpers/groups'

const NOW = 1_800_000_000
const code = (fn: () => unknown): string => {
  try { fn() } catch (err) { return err instanceof CanopyError ? err.code : `not coded: ${String(err)}` }
  return 'accepted'
}
const { group, ids, chains } = fixtureGroup(3, 7)
const joiner = identity(99)
const invite = (x = NOW + 3600, chain = chains[0]!): string =>
  formatInvitation(issue(chain, ids[0]!, { g: group, s: joiner.nodeId, r: ROLES.member, x, n: 'test', a: `${ids[0]!.nodeId}@127.0.0.1:8788` }))

test('a valid invitation names the group, its roles, the inviter', () => {
  const m = parseInvitation(invite(), NOW)
  assert.is(m.g, group)
  assert.is(m.s, joiner.nodeId)
  assert.is(m.r, ROLES.member)
  assert.is(m.n, 'test')
  assert.is(m.a, `${ids[0]!.nodeId}@127.0.0.1:8788`)
  // an admin (member 1) may invite too; a plain member (2) may not
  assert.is(code(() => issue(chains[1]!, ids[1]!, { g: group, s: joiner.nodeId, r: 2, x: NOW + 10 })), 'accepted')
  assert.is(code(() => issue(chains[2]!, ids[2]!, { g: group, s: joiner.nodeId, r: 2, x: NOW + 10 })), 'GROUP_FORBIDDEN')
})

test('expired, tampered, foreign and revoked invitations are refused with their codes', () => {
  assert.is(code(() => parseInvitation(invite(NOW - 1), NOW)), 'GROUP_INVITATION_EXPIRED')
  const text = invite()
  // flip one character in the middle of every position band: each must fail as tampered (or not an invitation)
  for (let i = 20; i < text.length; i += 7) {
    const c = text[i] === 'A' ? 'B' : 'A'
    const bad = text.slice(0, i) + c + text.slice(i + 1)
    assert.ok(['GROUP_INVITATION_INVALID', 'GROUP_INVITATION_FOREIGN'].includes(code(() => parseInvitation(bad, NOW))), `position ${i}`)
  }
  assert.is(code(() => parseInvitation('hello', NOW)), 'GROUP_INVITATION_INVALID')
  // a certificate of another group spliced into this chain
  const other = newGroup('other', ids[0]!, createSeededRandom(5).bytes(32))
  const foreign = [chains[0]![0]!, issue(other.chain, ids[0]!, { g: other.group, s: joiner.nodeId, r: 2, x: NOW + 10, a: 'x@1.2.3.4:1' })[1]!]
  assert.is(code(() => parseInvitation(formatInvitation(foreign), NOW)), 'GROUP_INVITATION_FOREIGN')
  // the inviter has been revoked
  assert.is(code(() => verifyChain(parseInvitation(invite(), NOW).chain, NOW, (n) => n === ids[0]!.nodeId)), 'GROUP_REVOKED')
})

test.run()
