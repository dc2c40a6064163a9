// CRC-32 (IEEE 802.3, the zlib/PNG polynomial, reflected 0xedb88320). Node's
// zlib.crc32 (native, ~6 GB/s here) where it exists (Node >= 20.15), else the
// classic byte-wise table. Both give identical values: check value 0xcbf43926
// for "123456789" (the catalogue's CRC-32/ISO-HDLC).

import * as zlib from 'node:zlib'

type Crc32 = (data: Uint8Array, initial?: number) => number

const native = (zlib as unknown as { crc32?: Crc32 }).crc32
/** Whether this Node has the native one (faster than SHA-256; the table is not). */
export const crc32Native = native !== undefined

let table: Uint32Array | null = null
function makeTable (): Uint32Array {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
}

/** The portable implementation (exported so tests can check it against the native one). */
export function crc32Table (data: Uint8Array, initial = 0): number {
  table ??= makeTable()
  let c = (initial ^ 0xffffffff) >>> 0
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** CRC-32 of data, continuing from `initial` (the CRC of what came before). */
export const crc32: Crc32 = native !== undefined ? (d, i = 0) => native(d, i) >>> 0 : crc32Table
