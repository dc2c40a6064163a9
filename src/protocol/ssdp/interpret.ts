// From a parsed datagram to what it means for Canopy: a search to answer, a
// Canopy agent alive (NOTIFY or search reply) or leaving, something that is
// not ours, or a drop with a reason. Pure: the caller adds the source checks.

import { SSDP_DATAGRAM_BYTES_MAX } from '../../limits'
import { parseSsdp } from './message'
import {
  CANOPY_DEVICE_TYPE, SSDP_DISCOVER, nodeIdOfCanopyUsn, parseId, parseLocation, parseMaxAge, parseMx, type Location
} from './names'

/** Why a datagram got no further; these are the label values of the drop counter. */
export const DROP_REASONS = [
  'too-large', 'malformed', 'not-ours', 'unexpected', 'not-lan', 'other-interface', 'broadcast', 'bad-port', 'self',
  'bad-man', 'no-mx', 'bad-mx', 'no-st', 'bad-usn', 'bad-location', 'location-mismatch', 'bad-max-age',
  'rate-limited', 'pending-full', 'reply-too-large'
] as const
export type DropReason = typeof DROP_REASONS[number]

export type SsdpEvent =
  | { type: 'search', st: string, mxSeconds: number }
  | { type: 'alive', nodeId: string, location: Location, maxAgeSeconds: number, via: 'notify' | 'reply', bootId: number | null, configId: number | null }
  | { type: 'byebye', nodeId: string }
  | { type: 'drop', reason: DropReason }

const drop = (reason: DropReason): SsdpEvent => ({ type: 'drop', reason })

/** Never throws: malformed input is a drop. */
export function interpretSsdp (data: Uint8Array): SsdpEvent {
  if (data.length > SSDP_DATAGRAM_BYTES_MAX) return drop('too-large')
  let msg
  try {
    msg = parseSsdp(data)
  } catch {
    return drop('malformed') // parseSsdp throws only SSDP_MALFORMED
  }
  const h = msg.headers
  if (msg.kind === 'search') {
    // UDA 1.1 §1.3.2: MAN is the quoted string, exactly.
    if (h.get('man') !== SSDP_DISCOVER) return drop('bad-man')
    const st = h.get('st')
    if (st === undefined || st === '') return drop('no-st')
    const mx = parseMx(h.get('mx'))
    if (mx === 'missing') return drop('no-mx')
    if (mx === 'bad') return drop('bad-mx')
    if (h.get('host') === undefined) return drop('malformed')
    return { type: 'search', st, mxSeconds: mx }
  }
  if (msg.kind === 'response' && msg.status !== 200) return drop('not-ours')
  const type = msg.kind === 'notify' ? h.get('nt') : h.get('st')
  if (type !== CANOPY_DEVICE_TYPE) return drop('not-ours')
  const nodeId = nodeIdOfCanopyUsn(h.get('usn') ?? '')
  if (nodeId === null) return drop('bad-usn')
  if (msg.kind === 'notify') {
    const nts = h.get('nts')
    if (nts === 'ssdp:byebye') return { type: 'byebye', nodeId }
    if (nts !== 'ssdp:alive' && nts !== 'ssdp:update') return drop('malformed')
  }
  const location = parseLocation(h.get('location') ?? '')
  if (!location) return drop('bad-location')
  const maxAgeSeconds = parseMaxAge(h.get('cache-control'))
  if (maxAgeSeconds === null) return drop('bad-max-age')
  return {
    type: 'alive',
    nodeId,
    location,
    maxAgeSeconds,
    via: msg.kind === 'notify' ? 'notify' : 'reply',
    bootId: parseId(h.get('bootid.upnp.org')),
    configId: parseId(h.get('configid.upnp.org'))
  }
}
