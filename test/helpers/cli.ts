// Run the CLI in-process with captured output.

import { PassThrough } from 'node:stream'
import { main } from '../../src/cli/main'

export async function runCli (argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const out = new PassThrough(); out.on('data', (c: Buffer) => { stdout += c.toString() })
  const err = new PassThrough(); err.on('data', (c: Buffer) => { stderr += c.toString() })
  const code = await main(argv, { stdout: out, stderr: err, stdin: new PassThrough(), env: {} })
  await new Promise((resolve) => setImmediate(resolve))
  return { code, stdout, stderr }
}
