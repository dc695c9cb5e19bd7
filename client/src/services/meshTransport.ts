// P2P media: a full mesh, one PeerLink (perfect negotiation) per remote participant.
// Who offers: the newcomer gets the existing participants in its join answer and creates a
// connection to each; adding its tracks fires `negotiationneeded`, which sends the offer.
// An existing participant creates its side lazily, when the newcomer's first signal arrives.
//
// Repair, for as long as both are in the room (ConnectionRecovery decides when): the first
// repair of a broken link is an ICE restart, started by the impolite side only (the polite
// side's restart would be rolled back in the glare anyway); the next ones replace the
// RTCPeerConnection on both sides. A new connection has a higher *generation*, sent with
// each of its signals: a peer that receives a higher generation than its own replaces its
// connection too, one of a lower generation is stale and ignored. Both sides may start the
// same generation at once; their offers then meet in one perfect negotiation.
import { t } from '../i18n'
import type { ParticipantInfo, Signal } from './protocol'
import { ConnectionRecovery, type RecoveryOptions } from './recovery'
import { summarizeRemote, selectedPath } from './remoteStats'
import type { MediaTransport, PeerDebugInfo, RemoteMediaStats, TransportContext } from './transport'
import { updateIceServers } from './transport'
import { PeerLink } from './webrtc'

interface Peer {
  link: PeerLink
  recovery: ConnectionRecovery
}

/** What a repair of a broken P2P link does (pure, for the tests). */
export function meshRepairAction(attempt: number, polite: boolean): 'ice-restart' | 'wait' | 'new-connection' {
  if (attempt <= 1) return polite ? 'wait' : 'ice-restart'
  return 'new-connection'
}

export class MeshTransport implements MediaTransport {
  readonly kind = 'mesh' as const
  private readonly peers_ = new Map<string, Peer>()
  private localStream: MediaStream | null
  private closed = false

  constructor(
    private readonly ctx: TransportContext,
    /** For tests: recovery timing (timers, backoff randomness, bounds). */
    private readonly recoveryOptions: Partial<RecoveryOptions> = {},
  ) {
    this.localStream = ctx.localStream
  }

  start(existing: ParticipantInfo[]): void {
    for (const p of existing) {
      if (p.userId === this.ctx.selfId) continue
      this.connect(p.userId, true, 0)
    }
  }

  userJoined(p: ParticipantInfo): void {
    // A participant who joins again (e.g. after a network blip) starts from scratch: drop the
    // old connection; the newcomer will offer.
    if (this.peers_.has(p.userId)) this.dropPeer(p.userId)
  }

  userLeft(userId: string): void {
    this.dropPeer(userId)
  }

  signal(fromUserId: string, signal: Signal): void {
    if (this.closed) return
    const gen = typeof signal.gen === 'number' && Number.isInteger(signal.gen) && signal.gen > 0 ? signal.gen : 0
    const peer = this.peers_.get(fromUserId)
    let link: PeerLink
    if (!peer) {
      link = this.connect(fromUserId, false, gen)
    } else if (gen > peer.link.gen) {
      // The peer started a new connection: follow it rather than repair ours.
      link = this.replaceLink(fromUserId, peer, false, gen)
      peer.recovery.adopted()
    } else if (gen < peer.link.gen) {
      return // a signal of a connection we have replaced
    } else {
      link = peer.link
    }
    void link.handleSignal(signal)
  }

  async setLocalTrack(
    kind: 'audio' | 'video',
    track: MediaStreamTrack | null,
    stream: MediaStream | null,
  ): Promise<void> {
    this.localStream = stream
    await Promise.all([...this.peers_.values()].map((p) => p.link.setTrack(kind, track, stream)))
  }

  setIceServers(servers: RTCIceServer[]): void {
    for (const { link } of this.peers_.values()) updateIceServers(link.pc, servers)
  }

  peers(): PeerDebugInfo[] {
    return [...this.peers_.values()].map(({ link }) => ({
      userId: link.remoteId,
      connectionState: link.pc.connectionState,
      iceConnectionState: link.pc.iceConnectionState,
      signalingState: link.pc.signalingState,
    }))
  }

  async stats(): Promise<Record<string, RTCStatsReport>> {
    const out: Record<string, RTCStatsReport> = {}
    for (const [id, { link }] of this.peers_) {
      const r = await link.getStats()
      if (r) out[id] = r
    }
    return out
  }

  async remoteStats(): Promise<Record<string, RemoteMediaStats>> {
    const out: Record<string, RemoteMediaStats> = {}
    for (const [id, { link }] of this.peers_) {
      const state = link.pc.connectionState
      const report = await link.getStats().catch(() => null)
      if (!report) {
        out[id] = { connectionState: state }
        continue
      }
      const live = new Set((link.remoteStream?.getTracks() ?? []).map((t) => t.id))
      // The tracks shown for this peer; any inbound stream when the browser names none.
      const summary = summarizeRemote(report, state, (s) =>
        !s.trackIdentifier || live.size === 0 || live.has(s.trackIdentifier) ? id : null,
      )
      out[id] = summary[id] ?? { connectionState: state, ...selectedPath(report) }
    }
    return out
  }

  close(): void {
    this.closed = true
    for (const id of [...this.peers_.keys()]) this.dropPeer(id)
  }

  /** A first connection to `userId` (generation `gen`), with its recovery. */
  private connect(userId: string, initiator: boolean, gen: number): PeerLink {
    this.dropPeer(userId)
    const { callbacks, signaling } = this.ctx
    const recovery: ConnectionRecovery = new ConnectionRecovery({
      name: `peer ${userId}`,
      canRepair: () => signaling.connected !== false,
      onRecovery: (state, attempt) => callbacks.onRecovery?.(userId, state, attempt),
      ...this.recoveryOptions,
      repair: (attempt) => this.repair(userId, attempt),
    })
    const peer: Peer = { link: null as unknown as PeerLink, recovery }
    this.peers_.set(userId, peer)
    const link = this.replaceLink(userId, peer, initiator, gen)
    recovery.started()
    return link
  }

  private repair(userId: string, attempt: number): void {
    const peer = this.peers_.get(userId)
    if (!peer || this.closed) return
    const action = meshRepairAction(attempt, peer.link.polite)
    if (action === 'ice-restart') peer.link.restartIce()
    else if (action === 'new-connection') this.replaceLink(userId, peer, true, peer.link.gen + 1)
    // 'wait': the impolite peer restarts ICE; the connect timeout brings the next attempt.
  }

  /** Puts a new PeerLink of generation `gen` in `peer`, closing the one it had. */
  private replaceLink(userId: string, peer: Peer, initiator: boolean, gen: number): PeerLink {
    const { selfId, signaling, iceServers, callbacks } = this.ctx
    const old = peer.link as PeerLink | null
    if (old) {
      old.close()
      callbacks.onRemoteStreamRemoved(userId)
    }
    const link: PeerLink = new PeerLink({
      selfId,
      remoteId: userId,
      iceServers,
      gen,
      send: (signal) => {
        void signaling.sendSignal(selfId, userId, signal).then((ack) => {
          if (!ack.ok && !['unknown_target', 'not_in_room', 'timeout'].includes(ack.error) && !link.isClosed) {
            callbacks.onNotice(t('meeting.signalingFailed', { reason: ack.message ?? ack.error }), 'error')
          }
        })
      },
      onTrack: (_track, stream) => callbacks.onRemoteStream(userId, stream),
      onStateChange: (state) => {
        if (peer.link !== link) return // a replaced connection's last words
        console.info(`peer ${userId}: ${state}`)
        callbacks.onPeerState(userId, state)
        peer.recovery.noteState(state)
      },
      onError: (err) => console.warn('peer', userId, err),
      createPeerConnection: this.ctx.createPeerConnection,
    })
    peer.link = link
    // The initiator also asks to receive audio and video it does not send itself, so a
    // participant without camera or microphone still gets everyone's media.
    link.addLocalTracks(this.localStream, initiator ? ['audio', 'video'] : [])
    callbacks.onPeerState(userId, 'new')
    return link
  }

  private dropPeer(userId: string): void {
    const peer = this.peers_.get(userId)
    if (!peer) return
    this.peers_.delete(userId)
    peer.recovery.dispose()
    peer.link.close()
    this.ctx.callbacks.onRemoteStreamRemoved(userId)
  }
}
