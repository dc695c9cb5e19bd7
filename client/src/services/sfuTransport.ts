// SFU media: one *publish* RTCPeerConnection that this client offers (send-only) and one
// *subscribe* RTCPeerConnection that the server offers (receive-only), over `sfu-*` events:
//   client -> server  sfu-publish          {description: offer, sources: {mid: source}}  ack {ok, description: answer}
//   client -> server  sfu-subscribe        {}                                           ack {ok}
//   server -> client  sfu-subscribe-offer  {session, description: offer, tracks: [{mid, userId, source, kind, active}]}
//   client -> server  sfu-subscribe-answer {session, description: answer}               ack {ok}
//   client -> server  sfu-candidate        {target: 'publish'|'subscribe', candidate}    ack {ok}
//   server -> client  sfu-connection-closed {target, reason}
// (as implemented by sfu/media/router.py; a new `session` number means a new subscribe
// connection). If the server does not know these events, the room still works for chat,
// reactions and the participant list, and the user sees a notice.
import type { ParticipantInfo, Signal } from './protocol'
import type { MediaTransport, PeerDebugInfo, TrackSource, TransportContext } from './transport'
import { SerialQueue } from './webrtc'

export const SFU_UNAVAILABLE = 'SFU media is not available on this server yet'

interface SubscribeTrack {
  mid: string
  userId: string
  source?: string
  kind?: string
  active?: boolean
}

interface SubscribeOffer {
  session: number
  description: RTCSessionDescriptionInit
  tracks?: SubscribeTrack[]
}

const MAX_RESTARTS = 5

export class SfuTransport implements MediaTransport {
  readonly kind = 'sfu' as const
  private publish: RTCPeerConnection | null = null
  private subscribe: RTCPeerConnection | null = null
  private subSession = -1
  private readonly offs: (() => void)[] = []
  private readonly pubQueue = new SerialQueue()
  private readonly subQueue = new SerialQueue()
  private readonly pendingCandidates: Record<'publish' | 'subscribe', RTCIceCandidateInit[]> = { publish: [], subscribe: [] }
  private readonly streams = new Map<string, MediaStream>() // userId -> stream
  private readonly localTracks: Record<'audio' | 'video', { track: MediaStreamTrack | null; source: TrackSource }> = {
    audio: { track: null, source: 'microphone' },
    video: { track: null, source: 'camera' },
  }
  private localStream: MediaStream | null
  /** The publish connection's transceivers and the kind each one sends. */
  private readonly pubKinds = new Map<RTCRtpTransceiver, 'audio' | 'video'>()
  private restarts = 0
  private unavailable = false
  private closed = false

  constructor(private readonly ctx: TransportContext) {
    this.localStream = ctx.localStream
    this.localTracks.audio.track = ctx.localStream?.getAudioTracks()[0] ?? null
    this.localTracks.video.track = ctx.localStream?.getVideoTracks()[0] ?? null
  }

  start(_existing: ParticipantInfo[]): void {
    const { signaling } = this.ctx
    this.offs.push(
      signaling.onRaw('sfu-subscribe-offer', (d) => void this.subQueue.run(() => this.onSubscribeOffer(d as SubscribeOffer))),
      signaling.onRaw('sfu-connection-closed', (d) => this.onConnectionClosed(d as { target?: string; reason?: string })),
    )
    // Subscribe offers come by themselves once joined; sfu-subscribe is only for a restart.
    void this.pubQueue.run(() => this.doPublish())
  }

  private fail(ack: { error: string; message?: string }, what: string): void {
    if (this.closed) return
    if (ack.error === 'unknown_event' || ack.error === 'timeout') {
      if (!this.unavailable) this.ctx.callbacks.onNotice(SFU_UNAVAILABLE, 'error')
      this.unavailable = true
    } else {
      this.ctx.callbacks.onNotice(`SFU ${what} failed: ${ack.message ?? ack.error}`, 'error')
    }
  }

  private sendCandidate(target: 'publish' | 'subscribe', candidate: RTCIceCandidateInit): void {
    void this.ctx.signaling.request('sfu-candidate', { target, candidate })
  }

  private newPc(target: 'publish' | 'subscribe'): RTCPeerConnection {
    const pc = new RTCPeerConnection({ iceServers: this.ctx.iceServers })
    pc.onicecandidate = (e) => {
      if (!e.candidate) return
      const c = e.candidate.toJSON()
      // The server accepts candidates only once it has this connection's description.
      if (pc.remoteDescription) this.sendCandidate(target, c)
      else this.pendingCandidates[target].push(c)
    }
    pc.onconnectionstatechange = () => {
      this.ctx.callbacks.onPeerState(target, pc.connectionState)
      if (pc.connectionState === 'failed') this.restart(target)
    }
    return pc
  }

  private flushCandidates(target: 'publish' | 'subscribe'): void {
    for (const c of this.pendingCandidates[target].splice(0)) this.sendCandidate(target, c)
  }

  /** Offers the publish connection (again): after a track of a new kind or source. */
  private async doPublish(): Promise<void> {
    if (this.closed || this.unavailable) return
    const have = (['audio', 'video'] as const).filter((k) => this.localTracks[k].track)
    if (!this.publish && have.length === 0) return // receive-only
    if (!this.publish) this.publish = this.newPc('publish')
    const pc = this.publish
    for (const kind of have) {
      if (![...this.pubKinds.values()].includes(kind)) {
        const t = pc.addTransceiver(this.localTracks[kind].track!, {
          direction: 'sendonly',
          streams: this.localStream ? [this.localStream] : [],
        })
        this.pubKinds.set(t, kind)
      }
    }
    try {
      await pc.setLocalDescription()
      const sources: Record<string, TrackSource> = {}
      for (const t of pc.getTransceivers()) {
        const kind = this.pubKinds.get(t)
        if (t.mid && kind) sources[t.mid] = this.localTracks[kind].source
      }
      const d = pc.localDescription!
      const ack = await this.ctx.signaling.request<{ description: RTCSessionDescriptionInit }>(
        'sfu-publish',
        { description: { type: d.type, sdp: d.sdp }, sources },
        10_000,
      )
      if (this.closed || pc !== this.publish) return
      if (!ack.ok) {
        await pc.setLocalDescription({ type: 'rollback' }).catch(() => undefined)
        this.fail(ack, 'publish')
        return
      }
      await pc.setRemoteDescription(ack.description)
      this.flushCandidates('publish')
    } catch (err) {
      console.warn('sfu publish', err)
      if (!this.closed) this.ctx.callbacks.onNotice('SFU publish failed', 'error')
    }
  }

  private async requestSubscribe(): Promise<void> {
    if (this.closed || this.unavailable) return
    const ack = await this.ctx.signaling.request('sfu-subscribe', {}, 10_000)
    if (!ack.ok) this.fail(ack, 'subscribe')
  }

  private async onSubscribeOffer(offer: SubscribeOffer): Promise<void> {
    if (this.closed || !offer?.description) return
    if (offer.session !== this.subSession || !this.subscribe) {
      this.subscribe?.close()
      this.pendingCandidates.subscribe = []
      this.subscribe = this.newPc('subscribe')
      this.subSession = offer.session
    }
    const pc = this.subscribe
    try {
      await pc.setRemoteDescription(offer.description)
      await pc.setLocalDescription()
      const d = pc.localDescription!
      const ack = await this.ctx.signaling.request('sfu-subscribe-answer', {
        session: offer.session,
        description: { type: d.type, sdp: d.sdp },
      })
      if (!ack.ok) {
        // An answer to a superseded offer: the newer offer is on its way.
        if (ack.error !== 'no_pending_offer') this.fail(ack, 'subscribe')
        return
      }
      this.flushCandidates('subscribe')
      this.updateStreams(pc, offer.tracks ?? [])
    } catch (err) {
      console.warn('sfu subscribe', err)
    }
  }

  /** One MediaStream per remote participant from the subscribe connection's active tracks. */
  private updateStreams(pc: RTCPeerConnection, tracks: SubscribeTrack[]): void {
    const byMid = new Map(tracks.map((t) => [t.mid, t]))
    const perUser = new Map<string, MediaStreamTrack[]>()
    for (const tr of pc.getTransceivers()) {
      const info = tr.mid ? byMid.get(tr.mid) : undefined
      if (!info || info.active === false || info.userId === this.ctx.selfId) continue
      const list = perUser.get(info.userId) ?? []
      // One video per tile: a screen share wins over a camera.
      const track = tr.receiver.track
      const clash = list.findIndex((t) => t.kind === track.kind)
      if (clash >= 0) {
        if (info.source === 'screen' || info.source === 'screen-audio') list[clash] = track
      } else list.push(track)
      perUser.set(info.userId, list)
    }
    for (const [userId, list] of perUser) {
      const prev = this.streams.get(userId)
      const same = prev && prev.getTracks().length === list.length && list.every((t) => prev.getTracks().includes(t))
      if (same) continue
      const stream = new MediaStream(list)
      this.streams.set(userId, stream)
      this.ctx.callbacks.onRemoteStream(userId, stream)
      this.ctx.callbacks.onPeerState(userId, 'connected')
    }
    for (const userId of [...this.streams.keys()]) {
      if (!perUser.has(userId)) {
        this.streams.delete(userId)
        this.ctx.callbacks.onRemoteStreamRemoved(userId)
      }
    }
  }

  private onConnectionClosed(d: { target?: string; reason?: string }): void {
    if (d?.target === 'publish' || d?.target === 'subscribe') this.restart(d.target)
  }

  private restart(target: 'publish' | 'subscribe'): void {
    if (this.closed || this.restarts >= MAX_RESTARTS) return
    this.restarts += 1
    if (target === 'publish') {
      this.publish?.close()
      this.publish = null
      this.pubKinds.clear()
      this.pendingCandidates.publish = []
      void this.pubQueue.run(() => this.doPublish())
    } else {
      this.subscribe?.close()
      this.subscribe = null
      this.pendingCandidates.subscribe = []
      void this.subQueue.run(() => this.requestSubscribe())
    }
  }

  userJoined(_p: ParticipantInfo): void {}

  userLeft(userId: string): void {
    if (this.streams.delete(userId)) this.ctx.callbacks.onRemoteStreamRemoved(userId)
  }

  signal(_from: string, _signal: Signal): void {}

  async setLocalTrack(
    kind: 'audio' | 'video',
    track: MediaStreamTrack | null,
    stream: MediaStream | null,
    source?: TrackSource,
  ): Promise<void> {
    const slot = this.localTracks[kind]
    const newSource = source ?? slot.source
    const sourceChanged = newSource !== slot.source
    slot.track = track
    slot.source = newSource
    this.localStream = stream
    const t = [...this.pubKinds].find(([, k]) => k === kind)?.[0]
    if (t) {
      await t.sender.replaceTrack(track)
      if (!sourceChanged) return
    } else if (!track) {
      return
    }
    // A new kind to send, or the server must learn the new source (camera <-> screen).
    await this.pubQueue.run(() => this.doPublish())
  }

  peers(): PeerDebugInfo[] {
    const out: PeerDebugInfo[] = []
    for (const [name, pc] of [['publish', this.publish], ['subscribe', this.subscribe]] as const) {
      if (pc) out.push({ userId: name, connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState, signalingState: pc.signalingState })
    }
    return out
  }

  async stats(): Promise<Record<string, RTCStatsReport>> {
    const out: Record<string, RTCStatsReport> = {}
    if (this.publish) out.publish = await this.publish.getStats()
    if (this.subscribe) out.subscribe = await this.subscribe.getStats()
    return out
  }

  close(): void {
    this.closed = true
    for (const off of this.offs) off()
    this.publish?.close()
    this.subscribe?.close()
    this.publish = null
    this.subscribe = null
    for (const id of this.streams.keys()) this.ctx.callbacks.onRemoteStreamRemoved(id)
    this.streams.clear()
    void this.ctx.signaling.request('sfu-unpublish', {}, 2000)
  }
}
