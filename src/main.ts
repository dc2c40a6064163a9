// The bundle's entry point: `node canopy.js <command> ...`. Exits explicitly:
// stdout and stderr are synchronous for files and pipes on Linux, and a stray
// keep-alive socket must not keep a finished command alive.

import { main } from './cli/main'

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env })
  .then((code) => { process.exit(code) })
  .catch((err: unknown) => {
    process.stderr.write(`canopy: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exit(1)
  })
