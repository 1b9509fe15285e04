// The stamp of the doubles' checks: a sha256 over the doubles (and what they are built on), their
// checks in this folder, and the versions of the real clients the checks use. `npm run test:doubles`
// writes it to verified.sha256 when the checks pass (`node __tests__/doubles/stamp.mjs write`);
// jest.config.js adds the doubles project while it is stale, and __tests__/unit/doubles-stamp.test.ts
// fails until it is refreshed.
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '../..')
const DOUBLES = ['cache-core.mjs', 'cache-double.mjs', 'cache-v2-double.mjs', 'fault-proxy.mjs', 'service.mjs'].map((f) => `__tests__/e2e/support/${f}`)
const CLIENTS = ['@actions/cache', '@azure/storage-blob', 'azurite']
export const stampFile = path.join(here, 'verified.sha256')

export function currentStamp() {
  const checks = fs
    .readdirSync(here)
    .filter((f) => f !== 'verified.sha256')
    .map((f) => `__tests__/doubles/${f}`)
  const hash = crypto.createHash('sha256')
  for (const file of [...DOUBLES, ...checks.sort()]) hash.update(`${file}\n`).update(fs.readFileSync(path.join(root, file)))
  for (const name of CLIENTS) hash.update(`${name}@${JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version}\n`)
  return hash.digest('hex')
}

export const recordedStamp = () => (fs.existsSync(stampFile) ? fs.readFileSync(stampFile, 'utf8').trim() : '')
export const stampIsStale = () => currentStamp() !== recordedStamp()

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'write') fs.writeFileSync(stampFile, `${currentStamp()}\n`)
