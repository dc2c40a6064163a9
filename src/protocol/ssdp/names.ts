// What Canopy puts in SSDP's fields and how it reads them back: the device
// type, the USN that carries the node id, LOCATION, CACHE-CONTROL and MX.
//
// The node id (16 bytes, identity.nodeIdOf) is the device UUID: written as a
// UUID (8-4-4-4-12 hex digits, UDA 1.1 §1.1.4), it is per device, survives
// restarts with the identity key, and any peer can read it back from the USN:
//   USN: uuid:5070f84b-f6a5-ba1e-1cdd-ccd586d2d34c::urn:canopy:device:agent:1
// A USN proves nothing by itself: a peer enters the list only when the
// description at LOCATION is signed by the key this id is derived from.

import { assert } from '../../errors'
import { parseIp } from '../../hal'
import { NODE_ID_PATTERN } from '../../identity'
import { SSDP_MAX_AGE_SECONDS_MAX, SSDP_MAX_AGE_SECONDS_MIN, SSDP_MX_SECONDS_MAX } from '../../limits'

export const SSDP_GROUP = '239.255.255.250'
export const SSDP_PORT = 1900
export const SSDP_HOST = `${SSDP_GROUP}:${SSDP_PORT}`
export const CANOPY_DEVICE_TYPE = 'urn:canopy:device:agent:1'
export const ROOT_DEVICE = 'upnp:rootdevice'
export const SSDP_ALL = 'ssdp:all'
export const SSDP_DISCOVER = '"ssdp:discover"'
/** Where LOCATION points on a Canopy agent's HTTP port. */
export const DESCRIBE_PATH = '/api/describe'

const UUID = /^uuid:[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i

/** The device UUID, "uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", of a node id. */
export function deviceUuid (nodeId: string): string {
  assert(NODE_ID_PATTERN.test(nodeId), 'a node id')
  return `uuid:${nodeId.replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')}`
}

/** The node id in a device UUID ("uuid:…"), or null. */
export function nodeIdOfUuid (uuid: string): string | null {
  return UUID.test(uuid) ? uuid.slice(5).replace(/-/g, '').toLowerCase() : null
}

/** The USN for one of our notification types (NT/ST). */
export function usnFor (nodeId: string, type: string): string {
  const uuid = deviceUuid(nodeId)
  return type === uuid ? uuid : `${uuid}::${type}`
}

/** The node id in a Canopy agent's USN ("uuid:…::urn:canopy:device:agent:1"), or null. */
export function nodeIdOfCanopyUsn (usn: string): string | null {
  const suffix = `::${CANOPY_DEVICE_TYPE}`
  return usn.endsWith(suffix) ? nodeIdOfUuid(usn.slice(0, -suffix.length)) : null
}

export interface Location {
  /** Dotted IPv4: the only form accepted, since it must equal the datagram's source. */
  host: string
  port: number
  /** Path and query, starting with "/". */
  path: string
}

const LOCATION = /^http:\/\/(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d{1,5})(\/[\x21-\x7e]*)?$/

/** A LOCATION we are willing to fetch: http, an IPv4 literal, an explicit port. */
export function parseLocation (text: string): Location | null {
  const m = LOCATION.exec(text)
  const port = Number(m?.[2])
  return !m || parseIp(m[1]!)?.family !== 4 || port < 1 || port > 65535 ? null : { host: m[1]!, port, path: m[3] ?? '/' }
}

export const formatLocation = (l: Location): string => `http://${l.host}:${l.port}${l.path}`

/** max-age from CACHE-CONTROL (directives separated by commas), clamped to our bounds; null when absent or malformed. */
export function parseMaxAge (cacheControl: string | undefined): number | null {
  for (const part of cacheControl?.split(',', 8) ?? []) {
    const m = /^\s*max-age\s*=\s*"?(\d{1,9})"?\s*$/i.exec(part)
    if (m) return Math.min(SSDP_MAX_AGE_SECONDS_MAX, Math.max(SSDP_MAX_AGE_SECONDS_MIN, Number(m[1])))
  }
  return null
}

/** MX in seconds, capped at SSDP_MX_SECONDS_MAX; 'missing' or 'bad' otherwise. */
export const parseMx = (mx: string | undefined): number | 'missing' | 'bad' =>
  mx === undefined ? 'missing' : /^\d{1,9}$/.test(mx) ? Math.min(SSDP_MX_SECONDS_MAX, Number(mx)) : 'bad'

/** BOOTID.UPNP.ORG / CONFIGID.UPNP.ORG: a non-negative 31-bit integer (UDA 1.1 §1.2.2), or null. */
export const parseId = (text: string | undefined): number | null =>
  text !== undefined && /^\d{1,10}$/.test(text) && Number(text) <= 0x7fffffff ? Number(text) : null
