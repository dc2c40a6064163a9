// canopy publish FILE: hash FILE in pieces and write its signed manifest.
// The file and the manifest then go on any plain HTTP server or CDN.

import { closeSync, fstatSync, openSync, readSync, writeFileSync, readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { pieceSizeFor, sha256, signManifest } from '../../content'
import { privateKeyFromPem } from '../../crypto'
import { CanopyError } from '../../errors'
import { flagList, flagString } from '../args'
import type { Command } from '../command'

export const publishCommand: Command = {
  name: 'publish',
  args: 'FILE',
  summary: 'write the signed manifest of FILE (put both on any HTTP server)',
  positionals: { min: 1, max: 1 },
  flags: [
    { name: 'key', value: 'F', help: 'publisher private key (from canopy keygen)' },
    { name: 'url', value: 'URL', repeatable: true, help: 'where FILE will be served (repeat for mirrors)' },
    { name: 'piece-size', value: 'N', help: 'bytes per piece, a power of two (default: by file size)' },
    { name: 'out', value: 'F', help: 'manifest to write (default FILE.canopy.json)' }
  ],
  async run (args, io) {
    const file = args.positionals[0]!
    const keyFile = flagString(args, 'key')
    const urls = flagList(args, 'url')
    if (keyFile === undefined || urls.length === 0) throw new CanopyError('USAGE', 'publish needs --key F and --url URL')
    const reading = <T>(path: string, fn: () => T): T => {
      try { return fn() } catch (err) { throw CanopyError.from(err, 'FILE_IO', `cannot read ${path}`) }
    }
    const key = privateKeyFromPem(reading(keyFile, () => readFileSync(keyFile, 'utf8')), keyFile)
    const fd = reading(file, () => openSync(file, 'r'))
    const pieces: string[] = []
    let size: number
    let pieceSize: number
    try {
      size = fstatSync(fd).size
      const ps = flagString(args, 'piece-size')
      pieceSize = ps === undefined ? pieceSizeFor(size) : Number(ps)
      if (!Number.isSafeInteger(pieceSize) || pieceSize <= 0) throw new CanopyError('USAGE', '--piece-size must be a number of bytes')
      const buf = Buffer.allocUnsafe(Math.min(pieceSize, Math.max(size, 1)))
      for (let at = 0; at < size; at += pieceSize) pieces.push(sha256(buf.subarray(0, readSync(fd, buf, 0, Math.min(pieceSize, size - at), at))))
    } finally {
      closeSync(fd)
    }
    const m = signManifest({ name: basename(file), size, pieceSize, pieces, urls }, key)
    const out = flagString(args, 'out') ?? `${file}.canopy.json`
    writeFileSync(out, m.bytes)
    io.stdout.write(`${out}: "${m.name}", ${size} bytes in ${pieces.length} pieces of ${pieceSize}, content id ${m.id}\n`)
    return 0
  }
}
