// canopy keygen: a new ed25519 key for a publisher (PEM, mode 0600) and its
// public key string (printed, and written beside it as F.pub).

import { formatPublicKey, privateKeyToPem } from '../../crypto'
import { CanopyError } from '../../errors'
import { createCryptoRandom, createLinuxFiles } from '../../hal'
import { createKeyPair } from '../../identity'
import { flagString } from '../args'
import type { Command } from '../command'

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'create a publisher key',
  positionals: { min: 0, max: 0 },
  flags: [{ name: 'out', value: 'F', help: 'private key file to create (F.pub: public key)' }],
  async run (args, io) {
    const out = flagString(args, 'out')
    if (out === undefined) throw new CanopyError('USAGE', 'keygen needs --out F')
    const files = createLinuxFiles()
    if (await files.mode(out) !== null) throw new CanopyError('FILE_IO', `${out} exists; a key is never overwritten`)
    const pair = createKeyPair(createCryptoRandom())
    const pub = formatPublicKey(pair.publicRaw)
    await files.writeAtomic(out, Buffer.from(privateKeyToPem(pair)), 0o600)
    await files.writeAtomic(`${out}.pub`, Buffer.from(pub + '\n'), 0o644)
    io.stdout.write(pub + '\n')
    return 0
  }
}
