// A minimal, deterministic ustar writer (POSIX.1-1988): enough for the
// firmware image, with fixed owner and mtime so the same inputs give the same
// bytes.

const BLOCK = 512

export interface TarEntry { path: string, data: Buffer, mode: number }

function header (path: string, size: number, mode: number, mtime: number): Buffer {
  if (Buffer.byteLength(path) > 100) throw new Error(`tar path too long: ${path}`)
  const h = Buffer.alloc(BLOCK, 0)
  const put = (text: string, at: number, len: number): void => { h.write(text, at, len, 'ascii') }
  const octal = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0') + '\0'
  put(path, 0, 100)
  put(octal(mode, 8), 100, 8)
  put(octal(0, 8), 108, 8) // uid
  put(octal(0, 8), 116, 8) // gid
  put(octal(size, 12), 124, 12)
  put(octal(mtime, 12), 136, 12)
  put('        ', 148, 8) // checksum field counts as spaces
  put('0', 156, 1) // regular file
  put('ustar\0', 257, 6)
  put('00', 263, 2)
  put('root', 265, 32)
  put('root', 297, 32)
  let sum = 0
  for (const b of h) sum += b
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8)
  return h
}

export function tar (entries: TarEntry[], mtime: number): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    parts.push(header(e.path, e.data.length, e.mode, mtime), e.data)
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK
    if (pad > 0) parts.push(Buffer.alloc(pad))
  }
  parts.push(Buffer.alloc(BLOCK * 2))
  return Buffer.concat(parts)
}
