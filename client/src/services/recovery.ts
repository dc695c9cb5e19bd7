// When and how often a broken connection is repaired. A connection is broken when it is
// `failed`, `disconnected` for longer than a grace period, not `connected` a while after a
// repair, or when its negotiation failed; each repair waits a backoff (0.5 s, 1, 2, 4, then
// 8 s, with jitter) and there is no last attempt: the transports repair for as long as the
// participant is in the room. After a connection has stayed `connected` for a while the count
// starts again, so the next cut is repaired quickly too.

export const BACKOFF_BASE_MS = 500
export const BACKOFF_CAP_MS = 8000

/** Delay before repair `attempt` (1, 2, ...): doubling from 0.5 s, capped, ±25% jitter. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1), BACKOFF_CAP_MS)
  return Math.round(base * (0.75 + 0.5 * random()))
}

export interface Timers {
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
}

export interface RecoveryOptions {
  /** For the console: what this connection is (e.g. 'sfu publish', 'peer bob'). */
  name?: string
  /** Repairs the connection; its new states are then fed to {@link ConnectionRecovery.noteState}. */
  repair: (attempt: number, reason: string) => void
  /** False while a repair cannot work (no signaling socket): the repair waits and retries. */
  canRepair?: () => boolean
  onRecovery?: (state: 'recovering' | 'recovered', attempt: number) => void
  /** `disconnected` for this long is broken (a short blip heals by itself). */
  graceMs?: number
  /** A connection that is not `connected` this long after its start or a repair is broken. */
  connectTimeoutMs?: number
  /** `connected` this long: the next trouble starts again at the first attempt. */
  stableMs?: number
  /** How often a repair that could not run (see canRepair) tries again. */
  waitMs?: number
  random?: () => number
  timers?: Timers
}

export const RECOVERY_DEFAULTS = {
  graceMs: 3000,
  connectTimeoutMs: 10_000,
  stableMs: 10_000,
  waitMs: 1000,
}

/** The repair schedule of one connection (or of one remote peer's successive connections). */
export class ConnectionRecovery {
  private attemptCount = 0
  private recovering = false
  private disposed = false
  private grace: unknown = null
  private scheduled: unknown = null
  private connectDeadline: unknown = null
  private stable: unknown = null
  private readonly o: Required<Omit<RecoveryOptions, 'onRecovery' | 'name'>> & Pick<RecoveryOptions, 'onRecovery' | 'name'>

  constructor(options: RecoveryOptions) {
    this.o = {
      canRepair: () => true,
      random: Math.random,
      timers: realTimers,
      ...RECOVERY_DEFAULTS,
      ...options,
    }
  }

  /** The current repair attempt (0 when the connection is fine). */
  get attempt(): number {
    return this.attemptCount
  }

  get isRecovering(): boolean {
    return this.recovering
  }

  /** A connection was (re)created: it must reach `connected` within the connect timeout. */
  started(): void {
    if (this.disposed) return
    this.clear('connectDeadline')
    this.connectDeadline = this.o.timers.setTimeout(() => {
      this.connectDeadline = null
      this.broken('connect timeout')
    }, this.o.connectTimeoutMs)
  }

  /** Feeds a state of the current connection (never of one already replaced). */
  noteState(state: RTCPeerConnectionState | 'new'): void {
    if (this.disposed) return
    if (state === 'connected') {
      this.clear('grace')
      this.clear('connectDeadline')
      this.clear('scheduled') // healed by itself before the repair ran
      if (this.recovering) {
        console.info(`${this.o.name ?? 'connection'}: connected again after ${this.attemptCount} repair(s)`)
        this.recovering = false
        this.o.onRecovery?.('recovered', this.attemptCount)
      }
      this.clear('stable')
      this.stable = this.o.timers.setTimeout(() => {
        this.stable = null
        this.attemptCount = 0
      }, this.o.stableMs)
    } else if (state === 'disconnected') {
      this.clear('stable')
      if (this.grace === null && this.scheduled === null) {
        this.grace = this.o.timers.setTimeout(() => {
          this.grace = null
          this.broken('disconnected')
        }, this.o.graceMs)
      }
    } else if (state === 'failed') {
      this.broken('failed')
    }
  }

  /** The connection is broken (failed, or its negotiation failed): schedule a repair. */
  broken(reason: string): void {
    if (this.disposed || this.scheduled !== null) return
    this.clear('grace')
    this.clear('stable')
    this.clear('connectDeadline')
    this.attemptCount += 1
    this.recovering = true
    const attempt = this.attemptCount
    console.info(`${this.o.name ?? 'connection'}: ${reason}, repair ${attempt}`)
    this.o.onRecovery?.('recovering', attempt)
    this.scheduled = this.o.timers.setTimeout(() => this.run(attempt, reason), backoffDelay(attempt, this.o.random))
  }

  /** The peer repaired the connection for us (P2P: it started a new one): wait for it. */
  adopted(): void {
    if (this.disposed) return
    this.clear('scheduled')
    this.clear('grace')
    this.started()
  }

  /** Nothing to watch any more (e.g. nothing to publish): no repair, no deadline. */
  reset(): void {
    for (const k of ['grace', 'scheduled', 'connectDeadline', 'stable'] as const) this.clear(k)
    this.recovering = false
    this.attemptCount = 0
  }

  dispose(): void {
    this.disposed = true
    for (const k of ['grace', 'scheduled', 'connectDeadline', 'stable'] as const) this.clear(k)
  }

  private run(attempt: number, reason: string): void {
    if (this.disposed) return
    if (!this.o.canRepair()) {
      this.scheduled = this.o.timers.setTimeout(() => this.run(attempt, reason), this.o.waitMs)
      return
    }
    this.scheduled = null
    this.started()
    try {
      this.o.repair(attempt, reason)
    } catch (err) {
      console.warn('repair', err)
      this.broken('repair failed')
    }
  }

  private clear(k: 'grace' | 'scheduled' | 'connectDeadline' | 'stable'): void {
    if (this[k] !== null) {
      this.o.timers.clearTimeout(this[k])
      this[k] = null
    }
  }
}
