// The datagrams a Canopy agent sends: NOTIFY alive/byebye, M-SEARCH, and the
// one reply to a search, which must fit its byte budget (at most 3x the
// search and 512 bytes) or is not sent at all.

import { SSDP_REPLY_AMPLIFICATION_MAX, SSDP_REPLY_BYTES_MAX } from '../../limits'
import { formatSsdp, type SsdpHeaders } from './message'
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
  if (st === CANOPY_DEVICE_TYPE || st === SSDP_ALL) return CANOPY_DEVICE_TYPE
  if (st === ROOT_DEVICE) return ROOT_DEVICE
  if (st.toLowerCase() === deviceUuid(nodeId)) return deviceUuid(nodeId)
  return null
}

/** The byte budget of a reply to a search of requestBytes. */
export function replyBudget (requestBytes: number): number {
  return Math.min(SSDP_REPLY_BYTES_MAX, SSDP_REPLY_AMPLIFICATION_MAX * requestBytes)
}

/** Headers a reply sheds, in this order, until it fits its budget. */
const OPTIONAL_IN_REPLY = ['SERVER', 'CONFIGID.UPNP.ORG', 'BOOTID.UPNP.ORG']

/**
 * The one reply datagram, or null when even the smallest form exceeds the
 * budget. Peers need only ST, USN, LOCATION and CACHE-CONTROL (EXT is two
 * bytes UDA insists on); the rest is dropped first when the search was small.
 */
export function buildReply (st: string, advert: Advert, budgetBytes: number): Buffer | null {
  let headers: Array<[string, string]> = [
    ['CACHE-CONTROL', `max-age=${advert.maxAgeSeconds}`],
    ['EXT', ''],
    ['LOCATION', advert.location],
    ['SERVER', advert.server],
    ['ST', st],
    ['USN', usnFor(advert.nodeId, st)],
    ['BOOTID.UPNP.ORG', String(advert.bootId)],
    ['CONFIGID.UPNP.ORG', String(advert.configId)]
  ]
  for (let shed = 0; ; shed++) {
    const bytes = formatSsdp('response', headers)
    if (bytes.length <= budgetBytes) return bytes
    if (shed >= OPTIONAL_IN_REPLY.length) return null
    headers = headers.filter(([n]) => n !== OPTIONAL_IN_REPLY[shed])
  }
}

export function buildAlive (advert: Advert): Buffer {
  const headers: SsdpHeaders = [
    ['HOST', SSDP_HOST],
    ['CACHE-CONTROL', `max-age=${advert.maxAgeSeconds}`],
    ['LOCATION', advert.location],
    ['NT', CANOPY_DEVICE_TYPE],
    ['NTS', 'ssdp:alive'],
    ['SERVER', advert.server],
    ['USN', usnFor(advert.nodeId, CANOPY_DEVICE_TYPE)],
    ['BOOTID.UPNP.ORG', String(advert.bootId)],
    ['CONFIGID.UPNP.ORG', String(advert.configId)]
  ]
  return formatSsdp('notify', headers)
}

export function buildByebye (nodeId: string): Buffer {
  return formatSsdp('notify', [
    ['HOST', SSDP_HOST],
    ['NT', CANOPY_DEVICE_TYPE],
    ['NTS', 'ssdp:byebye'],
    ['USN', usnFor(nodeId, CANOPY_DEVICE_TYPE)]
  ])
}

export function buildSearch (st: string, mxSeconds: number): Buffer {
  return formatSsdp('search', [
    ['HOST', SSDP_HOST],
    ['MAN', SSDP_DISCOVER],
    ['MX', String(mxSeconds)],
    ['ST', st]
  ])
}
