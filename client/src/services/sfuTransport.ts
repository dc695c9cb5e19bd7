// SFU media: one *publish* RTCPeerConnection that this client offers (send-only) and one
// *subscribe* RTCPeerConnection that the server offers (receive-only), over `sfu-*` events:
//   client -> server  sfu-publish          {description: offer, sources: {mid: source}}  ack {ok, description: answer, unsupported?}
//   client -> server  sfu-subscribe        {}                                           ack {ok}
//   server -> client  sfu-subscribe-offer  {session, description: offer, tracks: [{mid, userId, source, kind, active, rejected?}]}
//   client -> server  sfu-subscribe-answer {session, description: answer}               ack {ok}
//   client -> server  sfu-candidate        {target: 'publish'|'subscribe', candidate}    ack {ok}
//   server -> client  sfu-connection-closed {target, reason}
// (as implemented by sfu/media/router.py; a new `session` number means a new subscribe
// connection). *Publish-only* (a recorded P2P room's uplink, #19): the publish connection
// alone; the room's media comes over the mesh. If the server does not know these events, the room still works for chat,
// reactions and the participant list, and the user sees a notice.
//
// Repair: aiortc cannot restart ICE, so a broken connection (failed, disconnected too long,
// closed by the server, or a failed negotiation) is replaced by a new one: a new publish
// offer (the server sees new ICE credentials and starts afresh) or `sfu-subscribe` (a new
// session). ConnectionRecovery decides when, with backoff, for as long as the socket is up.
import { t } from '../i18n'
import type { ParticipantInfo, Signal } from './protocol'
import { ConnectionRecovery, type RecoveryOptions } from './recovery'
import { selectedPath, summarizeRemote } from './remoteStats'
import type {
  MediaTransport,
  PeerDebugInfo,
  PeerState,
  Reduced,
  RemoteMediaStats,
  TrackSource,
  TransportContext,
} from './transport'
import { updateIceServers } from './transport'
import { SerialQueue } from './webrtc'
import { raiseForSimulcast, reducedBy, simulcastEncodings, type SfuLayer } from './simulcast'
import { boxesOf, lowBandwidth, tileViews, viewsChanged, type TileView } from './tileViews'


export interface SubscribeTrack {
  mid: string
  userId: string
  source?: string
  kind?: string
  active?: boolean
  /** The server knows this browser rejected the track's m-line (it cannot decode it). */
  rejected?: boolean
}

interface SubscribeOffer {
  session: number
  description: RTCSessionDescriptionInit
  tracks?: SubscribeTrack[]
}

interface PublishAnswer {
  description: RTCSessionDescriptionInit
  unsupported?: { mid?: string; kind?: string; reason?: string }[]
}

type Target = 'publish' | 'subscribe'

export interface SfuTransportOptions {
  /** Only the publish connection: no subscribe offers are taken (a P2P room's uplink). */
  publishOnly?: boolean
  /** What the first video track is (a screen being shared when the uplink opens). */
  videoSource?: TrackSource
  /** The camera's simulcast encodings, lowest first (the join answer's `simulcast`). */
  simulcast?: RTCRtpEncodingParameters[]
}

/** How often the tiles' sizes and visibility are looked at (sfu-view). */
const VIEW_INTERVAL_MS = 700
/** A report is repeated this often even when nothing changed (a reused m-line). */
const VIEW_REPEAT_MS = 5000

/** The mids of the m-sections an SDP rejects (port 0). */
export function rejectedMids(sdp: string | undefined): string[] {
  const out: string[] = []
  for (const section of (sdp ?? '').split(/\r?\n(?=m=)/).slice(1)) {
    const port = /^m=\S+ (\d+)/.exec(section)?.[1]
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1]
    if (port === '0' && mid !== undefined) out.push(mid)
  }
  return out
}

/** The user-facing text for a track of ours the server cannot take. */
export function unsupportedNotice(u: { kind?: string; reason?: string }): string {
  const what = u.kind === 'audio' ? 'audio' : u.kind === 'video' ? 'video' : 'media'
  return u.reason ? t(`meeting.unsupported.${what}Because`, { reason: u.reason }) : t(`meeting.unsupported.${what}`)
}

export class SfuTransport implements MediaTransport {
  readonly kind = 'sfu' as const
  private publish: RTCPeerConnection | null = null
  private subscribe: RTCPeerConnection | null = null
  private subSession = -1
  private readonly offs: (() => void)[] = []
  private readonly pubQueue = new SerialQueue()
  private readonly subQueue = new SerialQueue()
  private readonly pendingCandidates: Record<Target, RTCIceCandidateInit[]> = { publish: [], subscribe: [] }
  private readonly streams = new Map<string, MediaStream>() // userId -> stream
  private readonly localTracks: Record<'audio' | 'video', { track: MediaStreamTrack | null; source: TrackSource }> = {
    audio: { track: null, source: 'microphone' },
    video: { track: null, source: 'camera' },
  }
  private localStream: MediaStream | null
  /** The publish connection's transceivers and the kind each one sends. */
  private readonly pubKinds = new Map<RTCRtpTransceiver, 'audio' | 'video'>()
  /** The latest subscribe offer's tracks, by mid. */
  private tracks = new Map<string, SubscribeTrack>()
  /** `${session}/${mid}` of rejected tracks already reported. */
  private readonly reportedUnsupported = new Set<string>()
  private readonly recovery: Record<Target, ConnectionRecovery>
  private everAnswered = false
  private unavailable = false
  private closed = false
  private views: TileView[] = []
  private viewsSent = 0
  private viewTimer: ReturnType<typeof setInterval> | null = null
  /** Whose camera the server sends reduced for want of bandwidth, and how (sfu-layer). */
  private readonly reduced = new Map<string, Reduced>()
  /** When each subscribe m-line's track was first seen (for HIDDEN_AFTER_MS). */
  private readonly seenSince = new Map<string, number>()

  constructor(
    private readonly ctx: TransportContext,
    /** For tests: recovery timing (timers, backoff randomness, bounds). */
    recoveryOptions: Partial<RecoveryOptions> = {},
    private readonly options: SfuTransportOptions = {},
  ) {
    this.localStream = ctx.localStream
    this.localTracks.audio.track = ctx.localStream?.getAudioTracks()[0] ?? null
    this.localTracks.video.track = ctx.localStream?.getVideoTracks()[0] ?? null
    if (options.videoSource) this.localTracks.video.source = options.videoSource
    const recovery = (target: Target) =>
      new ConnectionRecovery({
        name: `sfu ${target}`,
        canRepair: () => ctx.signaling.connected !== false,
        onRecovery: (state, attempt) => ctx.callbacks.onRecovery?.(target, state, attempt),
        ...recoveryOptions,
        repair: () => this.repair(target),
      })
    this.recovery = { publish: recovery('publish'), subscribe: recovery('subscribe') }
  }

  start(_existing: ParticipantInfo[]): void {
    const { signaling } = this.ctx
    if (!this.options.publishOnly) {
      this.offs.push(
        signaling.onRaw('sfu-subscribe-offer', (d) => void this.subQueue.run(() => this.onSubscribeOffer(d as SubscribeOffer))),
      )
    }
    this.offs.push(
      signaling.onRaw('sfu-connection-closed', (d) => this.onConnectionClosed(d as { target?: string; reason?: string })),
    )
    if (!this.options.publishOnly) {
      this.offs.push(
        signaling.onRaw('sfu-layer', (d) => {
          const l = d as SfuLayer
          if (typeof l?.userId !== 'string' || l.source !== 'camera') return
          const reduced = reducedBy(l)
          if (reduced) this.reduced.set(l.userId, reduced)
          else this.reduced.delete(l.userId)
        }),
      )
    }
    if (!this.options.publishOnly && typeof document !== 'undefined') {
      this.viewTimer = setInterval(() => this.reportViews(), VIEW_INTERVAL_MS)
    }
    // Subscribe offers come by themselves once joined; sfu-subscribe is only for a repair.
    void this.pubQueue.run(() => this.doPublish())
  }

  /** A refused or unanswered request: the connection is repaired (or SFU is unavailable). */
  private fail(target: Target, ack: { error: string; message?: string }, what: string): void {
    if (this.closed) return
    // An uplink whose recording just ended (the state event is on its way): nothing to fix.
    if (this.options.publishOnly && ack.error === 'not_sfu_room') {
      this.recovery[target].reset()
      return
    }
    if (ack.error === 'unknown_event') {
      if (!this.unavailable) this.ctx.callbacks.onNotice(t('meeting.sfuUnavailable'), 'error')
      this.unavailable = true
      return
    }
    // A server that never answers sfu-* at all (the guide's Node server) looks like this.
    if (ack.error === 'timeout' && !this.everAnswered && this.recovery[target].attempt === 0) {
      this.ctx.callbacks.onNotice(t('meeting.sfuUnavailable'), 'error')
    } else if (ack.error !== 'timeout' && this.recovery[target].attempt === 0) {
      this.ctx.callbacks.onNotice(t('meeting.sfuFailed', { what, reason: ack.message ?? ack.error }), 'error')
    }
    this.recovery[target].broken(`${what}: ${ack.error}`)
  }

  private sendCandidate(target: Target, candidate: RTCIceCandidateInit): void {
    void this.ctx.signaling.request('sfu-candidate', { target, candidate })
  }

  private current(target: Target): RTCPeerConnection | null {
    return target === 'publish' ? this.publish : this.subscribe
  }

  private newPc(target: Target): RTCPeerConnection {
    const config: RTCConfiguration = { iceServers: this.ctx.iceServers }
    const pc = this.ctx.createPeerConnection ? this.ctx.createPeerConnection(config) : new RTCPeerConnection(config)
    pc.onicecandidate = (e) => {
      if (!e.candidate || this.current(target) !== pc) return
      const c = e.candidate.toJSON()
      // The server accepts candidates only once it has this connection's description.
      if (pc.remoteDescription) this.sendCandidate(target, c)
      else this.pendingCandidates[target].push(c)
    }
    pc.onconnectionstatechange = () => {
      if (this.closed || this.current(target) !== pc) return // a replaced connection
      const state = pc.connectionState
      console.info(`sfu ${target}: ${state}`)
      this.ctx.callbacks.onPeerState(target, state)
      // Everyone's media comes over the subscribe connection: their tiles share its state.
      if (target === 'subscribe') for (const id of this.streams.keys()) this.ctx.callbacks.onPeerState(id, state)
      this.recovery[target].noteState(state)
    }
    this.recovery[target].started()
    return pc
  }

  private flushCandidates(target: Target): void {
    for (const c of this.pendingCandidates[target].splice(0)) this.sendCandidate(target, c)
  }

  /** Offers the publish connection (again): at start, after a track of a new kind or source, after a repair. */
  private async doPublish(): Promise<void> {
    if (this.closed || this.unavailable) return
    const have = (['audio', 'video'] as const).filter((k) => this.localTracks[k].track)
    if (!this.publish && have.length === 0) {
      this.recovery.publish.reset() // receive-only: nothing to keep up
      return
    }
    if (!this.publish) this.publish = this.newPc('publish')
    const pc = this.publish
    for (const kind of have) {
      if (![...this.pubKinds.values()].includes(kind)) {
        const track = this.localTracks[kind].track!
        const camera = kind === 'video' && this.localTracks.video.source === 'camera'
        if (camera) await raiseForSimulcast(track, this.options.simulcast)
        const layers = kind === 'video' ? simulcastEncodings(this.options.simulcast, track.getSettings?.().height) : undefined
        const t = pc.addTransceiver(track, {
          direction: 'sendonly',
          streams: this.localStream ? [this.localStream] : [],
          ...(layers ? { sendEncodings: layers } : {}),
        })
        this.pubKinds.set(t, kind)
        if (layers) await this.setLayersActive(t)
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
      const ack = await this.ctx.signaling.request<PublishAnswer>(
        'sfu-publish',
        { description: { type: d.type, sdp: d.sdp }, sources },
        10_000,
      )
      if (this.closed || pc !== this.publish) return
      if (!ack.ok) {
        await pc.setLocalDescription({ type: 'rollback' }).catch(() => undefined)
        this.fail('publish', ack, 'publish')
        return
      }
      this.everAnswered = true
      await pc.setRemoteDescription(ack.description)
      this.flushCandidates('publish')
      for (const u of Array.isArray(ack.unsupported) ? ack.unsupported : []) {
        this.ctx.callbacks.onNotice(unsupportedNotice(u), 'error')
      }
    } catch (err) {
      if (this.closed || pc !== this.publish) return
      console.warn('sfu publish', err)
      if (this.recovery.publish.attempt === 0) this.ctx.callbacks.onNotice(t('meeting.sfuPublishFailed'), 'error')
      this.recovery.publish.broken('publish negotiation failed')
    }
  }

  private async requestSubscribe(): Promise<void> {
    if (this.closed || this.unavailable) return
    const ack = await this.ctx.signaling.request('sfu-subscribe', {}, 10_000)
    if (this.closed) return
    if (!ack.ok) {
      this.fail('subscribe', ack, 'subscribe')
      return
    }
    this.everAnswered = true
    // The offer follows when someone else publishes; with nobody publishing there is none.
    const anyone = [...this.tracks.values()].some((t) => t.active !== false && t.userId !== this.ctx.selfId)
    if (!anyone && !this.subscribe) this.recovery.subscribe.reset()
  }

  private async onSubscribeOffer(offer: SubscribeOffer): Promise<void> {
    if (this.closed || !offer?.description) return
    if (offer.session !== this.subSession || !this.subscribe) {
      this.subscribe?.close()
      this.pendingCandidates.subscribe = []
      this.subSession = offer.session
      this.subscribe = this.newPc('subscribe')
    }
    const pc = this.subscribe
    const tracks = offer.tracks ?? []
    console.info(`sfu subscribe: offer of session ${offer.session}, ${tracks.length} tracks`)
    this.tracks = new Map(tracks.map((t) => [t.mid, t]))
    try {
      await pc.setRemoteDescription(offer.description)
      await pc.setLocalDescription()
      const d = pc.localDescription!
      const ack = await this.ctx.signaling.request('sfu-subscribe-answer', {
        session: offer.session,
        description: { type: d.type, sdp: d.sdp },
      })
      if (this.closed || pc !== this.subscribe) return
      if (!ack.ok) {
        // An answer to a superseded offer: the newer offer is on its way.
        if (ack.error !== 'no_pending_offer') this.fail('subscribe', ack, 'subscribe')
        return
      }
      this.everAnswered = true
      this.flushCandidates('subscribe')
      this.reportUnsupported(offer.session, rejectedMids(d.sdp))
      this.updateStreams(pc)
    } catch (err) {
      if (this.closed || pc !== this.subscribe) return
      console.warn('sfu subscribe', err)
      this.recovery.subscribe.broken('subscribe negotiation failed')
    }
  }

  /** Tells the app once per track which remote media this browser cannot decode. */
  private reportUnsupported(session: number, rejected: string[]): void {
    const mids = new Set(rejected)
    for (const t of this.tracks.values()) if (t.rejected) mids.add(t.mid)
    for (const mid of mids) {
      const t = this.tracks.get(mid)
      const key = `${session}/${mid}`
      if (!t || t.active === false || t.userId === this.ctx.selfId || this.reportedUnsupported.has(key)) continue
      if (t.kind !== 'audio' && t.kind !== 'video') continue
      this.reportedUnsupported.add(key)
      t.rejected = true
      this.ctx.callbacks.onUnsupportedTrack?.(t.userId, t.kind)
    }
  }

  /** One MediaStream per remote participant from the subscribe connection's active tracks. */
  private updateStreams(pc: RTCPeerConnection): void {
    const perUser = new Map<string, MediaStreamTrack[]>()
    for (const tr of pc.getTransceivers()) {
      const info = tr.mid ? this.tracks.get(tr.mid) : undefined
      if (!info || info.active === false || info.rejected || info.userId === this.ctx.selfId) continue
      const list = perUser.get(info.userId) ?? []
      // One video per tile: a screen share wins over a camera.
      const track = tr.receiver.track
      const clash = list.findIndex((t) => t.kind === track.kind)
      if (clash >= 0) {
        if (info.source === 'screen' || info.source === 'screen-audio') list[clash] = track
      } else list.push(track)
      perUser.set(info.userId, list)
    }
    const state: PeerState = pc.connectionState
    for (const [userId, list] of perUser) {
      const prev = this.streams.get(userId)
      const same = prev && prev.getTracks().length === list.length && list.every((t) => prev.getTracks().includes(t))
      if (same) continue
      const stream = new MediaStream(list)
      this.streams.set(userId, stream)
      this.ctx.callbacks.onRemoteStream(userId, stream)
      this.ctx.callbacks.onPeerState(userId, state)
    }
    for (const userId of [...this.streams.keys()]) {
      if (!perUser.has(userId)) {
        this.streams.delete(userId)
        this.ctx.callbacks.onRemoteStreamRemoved(userId)
      }
    }
  }

  private onConnectionClosed(d: { target?: string; reason?: string }): void {
    if (this.closed || (d?.target !== 'publish' && d?.target !== 'subscribe')) return
    if (d.target === 'subscribe' && this.options.publishOnly) return
    this.recovery[d.target].broken(`closed by the server: ${d.reason ?? '?'}`)
  }

  /** Replaces a broken connection with a new one (called by its ConnectionRecovery). */
  private repair(target: Target): void {
    if (this.closed) return
    if (target === 'publish') {
      this.publish?.close()
      this.publish = null
      this.pubKinds.clear()
      this.pendingCandidates.publish = []
      void this.pubQueue.run(() => this.doPublish())
    } else {
      this.subscribe?.close()
      this.subscribe = null
      this.subSession = -1
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
      if (track && kind === 'video' && newSource === 'camera') await raiseForSimulcast(track, this.options.simulcast)
      await t.sender.replaceTrack(track)
      if (sourceChanged && kind === 'video') await this.setLayersActive(t)
      if (!sourceChanged) return
    } else if (!track) {
      return
    }
    // A new kind to send, or the server must learn the new source (camera <-> screen).
    await this.pubQueue.run(() => this.doPublish())
  }

  setIceServers(servers: RTCIceServer[]): void {
    for (const pc of [this.publish, this.subscribe]) if (pc) updateIceServers(pc, servers)
  }

  /** A screen share is sent as the top simulcast encoding alone (the lower ones would
   * make text unreadable and cost the sharer); a camera as every encoding. */
  private async setLayersActive(t: RTCRtpTransceiver): Promise<void> {
    const params = t.sender.getParameters()
    if (!params.encodings || params.encodings.length < 2) return
    const screen = this.localTracks.video.source === 'screen'
    params.encodings.forEach((e, i) => (e.active = !screen || i === params.encodings.length - 1))
    await t.sender.setParameters(params).catch((err) => console.warn('sfu simulcast layers', err))
  }

  /** Tells the server how each received video is shown (sfu-view), when that changes. */
  private reportViews(): void {
    const pc = this.subscribe
    if (this.closed || !pc || typeof document === 'undefined') return
    const now = Date.now()
    const shown = []
    for (const tr of pc.getTransceivers()) {
      const info = tr.mid ? this.tracks.get(tr.mid) : undefined
      if (!tr.mid || !info || info.kind !== 'video' || info.active === false || info.rejected) continue
      const key = `${this.subSession}/${tr.mid}/${info.userId}/${info.source}`
      if (!this.seenSince.has(key)) this.seenSince.set(key, now)
      shown.push({ mid: tr.mid, boxes: boxesOf(tr.receiver.track), since: this.seenSince.get(key)! })
    }
    const viewport = { width: window.innerWidth, height: window.innerHeight }
    const views = tileViews(shown, viewport, window.devicePixelRatio || 1, now, lowBandwidth())
    if (!viewsChanged(this.views, views) && now - this.viewsSent < VIEW_REPEAT_MS) return
    this.views = views
    this.viewsSent = now
    if (views.length) void this.ctx.signaling.request('sfu-view', { views }, 5000).catch(() => undefined)
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

  async remoteStats(): Promise<Record<string, RemoteMediaStats>> {
    const pc = this.subscribe
    const out: Record<string, RemoteMediaStats> = {}
    const state: PeerState = pc ? pc.connectionState : 'new'
    // Everyone with media in the room, even before any of it arrives.
    const users = new Set<string>(this.streams.keys())
    for (const t of this.tracks.values()) if (t.active !== false && t.userId !== this.ctx.selfId) users.add(t.userId)
    if (!pc) {
      for (const id of users) out[id] = { connectionState: state }
      return out
    }
    const report = await pc.getStats().catch(() => null)
    if (!report) {
      for (const id of users) out[id] = { connectionState: state }
      return out
    }
    // Whose stream an inbound-rtp is: the track shown in someone's tile, else its mid.
    const byTrack = new Map<string, string>()
    for (const [id, s] of this.streams) for (const t of s.getTracks()) byTrack.set(t.id, id)
    const byMid = new Map<string, string>()
    for (const tr of pc.getTransceivers()) {
      const info = tr.mid ? this.tracks.get(tr.mid) : undefined
      const shown = info && byTrack.get(tr.receiver.track?.id) === info.userId
      if (info && shown) byMid.set(info.mid, info.userId)
    }
    const summary = summarizeRemote(report, state, (s) => {
      if (s.trackIdentifier && byTrack.has(s.trackIdentifier)) return byTrack.get(s.trackIdentifier)!
      if (s.mid && byMid.has(s.mid)) return byMid.get(s.mid)!
      return null
    })
    const path = selectedPath(report)
    for (const id of users) {
      out[id] = summary[id] ?? { connectionState: state, ...path }
      const reduced = this.reduced.get(id)
      if (reduced) out[id].reducedLayer = reduced
    }
    return out
  }

  close(): void {
    this.closed = true
    if (this.viewTimer) clearInterval(this.viewTimer)
    this.recovery.publish.dispose()
    this.recovery.subscribe.dispose()
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
