// The datagrams a Canopy agent sends: NOTIFY alive/byebye, M-SEARCH, and the
// one reply to a search, which must fit its byte budget (at most 3x the
// search and 512 bytes) or is not sent at all.

import { SSDP_REPLY_AMPLIFICATION_MAX, SSDP_REPLY_BYTES_MAX } from '../../limits'
import { formatSsdp } from './message'
import { CANOPY_DEVICE_TYPE, ROOT_DEVICE, SSDP_ALL, SSDP_DISCOVER, SSDP_HOST, deviceUuid, usnFor } from './names'

/** What this agent advertises on one interface. */
export interface Advert {
  nodeId: string
  /** LOCATION: http://<interface address>:<http port>/api/describe */
  location: string
  maxAgeSeconds: number
  /** SERVER: "OS/version UPnP/1.1 product/version" (UDA 1.1 §1.1.3). */
  server: string
  /** BOOTID.UPNP.ORG: new at every start, so peers fetch our description again after a restart. */
  bootId: number
  /** CONFIGID.UPNP.ORG: changes with what the description says (ports, capabilities, addresses...). */
  configId: number
}

/** The ST a search for `st` is answered with, or null when it is not about us. */
export function answerType (st: string, nodeId: string): string | null {
  const uuid = deviceUuid(nodeId)
  return st === CANOPY_DEVICE_TYPE || st === SSDP_ALL ? CANOPY_DEVICE_TYPE : st === ROOT_DEVICE ? st : st.toLowerCase() === uuid ? uuid : null
}

/** The byte budget of a reply to a search of requestBytes. */
export const replyBudget = (requestBytes: number): number => Math.min(SSDP_REPLY_BYTES_MAX, SSDP_REPLY_AMPLIFICATION_MAX * requestBytes)

/** What an alive and a reply share, around the headers that name the type. */
const advertHeaders = (a: Advert, type: Array<[string, string]>, usnType: string): Array<[string, string]> => [
  ['CACHE-CONTROL', `max-age=${a.maxAgeSeconds}`], ['LOCATION', a.location], ...type, ['SERVER', a.server],
  ['USN', usnFor(a.nodeId, usnType)], ['BOOTID.UPNP.ORG', String(a.bootId)], ['CONFIGID.UPNP.ORG', String(a.configId)]
]

/** Headers a reply sheds, in this order, until it fits its budget. */
const OPTIONAL_IN_REPLY = ['SERVER', 'CONFIGID.UPNP.ORG', 'BOOTID.UPNP.ORG', '']

/**
 * The one reply datagram, or null when even the smallest form exceeds the
 * budget. The mandatory headers come first in the budget (about 150 of the
 * bytes UDA insists on); the rest is dropped first when the search was small.
 */
export function buildReply (st: string, advert: Advert, budgetBytes: number): Buffer | null {
  let headers = [['EXT', ''] as [string, string], ...advertHeaders(advert, [['ST', st]], st)]
  for (const shed of OPTIONAL_IN_REPLY) {
    const bytes = formatSsdp('response', headers)
    if (bytes.length <= budgetBytes) return bytes
    headers = headers.filter(([n]) => n !== shed)
  }
  return null
}

export const buildAlive = (a: Advert): Buffer =>
  formatSsdp('notify', [['HOST', SSDP_HOST], ...advertHeaders(a, [['NT', CANOPY_DEVICE_TYPE], ['NTS', 'ssdp:alive']], CANOPY_DEVICE_TYPE)])

export const buildByebye = (nodeId: string): Buffer => formatSsdp('notify', [
  ['HOST', SSDP_HOST], ['NT', CANOPY_DEVICE_TYPE], ['NTS', 'ssdp:byebye'], ['USN', usnFor(nodeId, CANOPY_DEVICE_TYPE)]
])

export const buildSearch = (st: string, mxSeconds: number): Buffer => formatSsdp('search', [
  ['HOST', SSDP_HOST], ['MAN', SSDP_DISCOVER], ['MX', String(mxSeconds)], ['ST', st]
])
