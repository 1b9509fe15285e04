import { existsSync, readFileSync } from 'node:fs'
import type { BuildConfig } from '../config/types.js'
import { nativeArchitectures, qemuName, type Platform } from '../model/platform.js'
import type { Docker } from '../runtime/docker.js'
import { group } from '../runtime/log.js'

export interface QemuDecision {
  install: boolean
  /** the `docker run` that registers the emulator, when installing */
  argv?: string[]
  /** the build runs under emulation (installed now or already registered) */
  emulated: boolean
  reason: string
}

/** Is an emulator for this platform registered with binfmt_misc and enabled? */
export function binfmtRegistered(platform: Platform, root = '/proc/sys/fs/binfmt_misc'): boolean {
  const entry = `${root}/qemu-${qemuName(platform)}`
  if (!existsSync(entry)) return false
  try {
    return readFileSync(entry, 'utf8').startsWith('enabled')
  } catch {
    return false
  }
}

/** Install an emulator only for a foreign target arch that binfmt cannot already run. */
export function decideQemu(config: BuildConfig, nodeArch: string, registered: boolean): QemuDecision {
  const { platform } = config
  const native = nativeArchitectures(nodeArch).includes(platform.architecture)
  if (config.qemu === 'false') return { install: false, emulated: !native, reason: 'qemu: false' }
  const argv = qemuInstallArgv(config.qemuImage, platform)
  if (config.qemu === 'true') return { install: true, argv, emulated: !native, reason: 'qemu: true' }
  if (config.driver === 'remote') return { install: false, emulated: false, reason: 'remote builder: emulation is its own business' }
  if (native) return { install: false, emulated: false, reason: `native: the runner is ${nodeArch}` }
  if (registered) return { install: false, emulated: true, reason: `binfmt already emulates ${platform.architecture}` }
  return { install: true, argv, emulated: true, reason: `${platform.architecture} is foreign to this ${nodeArch} runner` }
}

export function qemuInstallArgv(qemuImage: string, platform: Platform): string[] {
  return ['run', '--privileged', '--rm', qemuImage, '--install', platform.architecture]
}

export async function installQemu(docker: Docker, argv: string[]): Promise<void> {
  await group('QEMU', () => docker.mustRun('installing the QEMU emulator', argv))
}
