// P2P media: a full mesh, one PeerLink (perfect negotiation) per remote participant.
// Who offers: the newcomer gets the existing participants in its join answer and creates a
// connection to each; adding its tracks fires `negotiationneeded`, which sends the offer.
// An existing participant creates its side lazily, when the newcomer's first signal arrives.
import type { ParticipantInfo, Signal } from './protocol'
import type { MediaTransport, PeerDebugInfo, TransportContext } from './transport'
import { PeerLink } from './webrtc'

export class MeshTransport implements MediaTransport {
  readonly kind = 'mesh' as const
  private readonly links = new Map<string, PeerLink>()
  private localStream: MediaStream | null
  private closed = false

  constructor(private readonly ctx: TransportContext) {
    this.localStream = ctx.localStream
  }

  start(existing: ParticipantInfo[]): void {
    for (const p of existing) {
      if (p.userId === this.ctx.selfId) continue
      this.replaceLink(p.userId, true)
    }
  }

  userJoined(p: ParticipantInfo): void {
    // A participant who joins again (e.g. after a network blip) starts from scratch: drop the
    // old connection; the newcomer will offer.
    if (this.links.has(p.userId)) this.dropLink(p.userId)
  }

  userLeft(userId: string): void {
    this.dropLink(userId)
  }

  signal(fromUserId: string, signal: Signal): void {
    if (this.closed) return
    let link = this.links.get(fromUserId)
    if (!link) link = this.replaceLink(fromUserId, false)
    void link.handleSignal(signal)
  }

  async setLocalTrack(
    kind: 'audio' | 'video',
    track: MediaStreamTrack | null,
    stream: MediaStream | null,
  ): Promise<void> {
    this.localStream = stream
    await Promise.all([...this.links.values()].map((l) => l.setTrack(kind, track, stream)))
  }

  peers(): PeerDebugInfo[] {
    return [...this.links.values()].map((l) => ({
      userId: l.remoteId,
      connectionState: l.pc.connectionState,
      iceConnectionState: l.pc.iceConnectionState,
      signalingState: l.pc.signalingState,
    }))
  }

  async stats(): Promise<Record<string, RTCStatsReport>> {
    const out: Record<string, RTCStatsReport> = {}
    for (const [id, link] of this.links) {
      const r = await link.getStats()
      if (r) out[id] = r
    }
    return out
  }

  close(): void {
    this.closed = true
    for (const id of [...this.links.keys()]) this.dropLink(id)
  }

  private replaceLink(userId: string, initiator: boolean): PeerLink {
    if (this.links.has(userId)) this.dropLink(userId)
    const { selfId, signaling, iceServers, callbacks } = this.ctx
    const link: PeerLink = new PeerLink({
      selfId,
      remoteId: userId,
      iceServers,
      send: (signal) => {
        void signaling.sendSignal(selfId, userId, signal).then((ack) => {
          if (!ack.ok && !['unknown_target', 'not_in_room', 'timeout'].includes(ack.error) && !link.isClosed) {
            callbacks.onNotice(`Signaling to a participant failed: ${ack.message ?? ack.error}`, 'error')
          }
        })
      },
      onTrack: (_track, stream) => callbacks.onRemoteStream(userId, stream),
      onStateChange: (state) => callbacks.onPeerState(userId, state),
      onError: (err) => console.warn('peer', userId, err),
      createPeerConnection: this.ctx.createPeerConnection,
    })
    this.links.set(userId, link)
    // The initiator also asks to receive audio and video it does not send itself, so a
    // participant without camera or microphone still gets everyone's media.
    link.addLocalTracks(this.localStream, initiator ? ['audio', 'video'] : [])
    callbacks.onPeerState(userId, 'new')
    return link
  }

  private dropLink(userId: string): void {
    const link = this.links.get(userId)
    if (!link) return
    this.links.delete(userId)
    link.close()
    this.ctx.callbacks.onRemoteStreamRemoved(userId)
  }
}
