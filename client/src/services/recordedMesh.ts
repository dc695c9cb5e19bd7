// A P2P room's media with its recording uplink (#19): the mesh carries the call as always;
// while the room is recorded on the server, a publish-only SfuTransport also sends our
// camera, microphone and screen to the server, whose recorder is its only receiver. The
// mesh is never touched, so the call's quality and latency stay what they were; the cost
// is one more upload while the recording runs.
import { t } from '../i18n'
import type { ParticipantInfo, Signal } from './protocol'
import { MeshTransport } from './meshTransport'
import { SfuTransport } from './sfuTransport'
import type { MediaTransport, PeerDebugInfo, RemoteMediaStats, TrackSource, TransportContext } from './transport'

export class RecordedMeshTransport implements MediaTransport {
  readonly kind = 'mesh' as const
  private uplink: SfuTransport | null = null
  private localStream: MediaStream | null
  private videoSource: TrackSource = 'camera'
  private iceServers: RTCIceServer[]
  private closed = false

  constructor(
    private readonly ctx: TransportContext,
    private readonly mesh: MediaTransport = new MeshTransport(ctx),
    /** For tests: how the uplink is made. */
    private readonly makeUplink: (ctx: TransportContext, videoSource: TrackSource) => SfuTransport = (c, v) =>
      new SfuTransport(c, {}, { publishOnly: true, videoSource: v }),
  ) {
    this.localStream = ctx.localStream
    this.iceServers = ctx.iceServers
  }

  /** Whether the uplink is open (for the UI and the tests). */
  get uploading(): boolean {
    return this.uplink !== null
  }

  /** The room is (or is no longer) recorded on the server: open or close the uplink. */
  setRecorded(recorded: boolean): void {
    if (this.closed) return
    if (recorded && !this.uplink) {
      const { callbacks } = this.ctx
      this.uplink = this.makeUplink(
        {
          ...this.ctx,
          iceServers: this.iceServers, // renewed TURN credentials included
          localStream: this.localStream,
          // Nobody's tiles depend on the uplink: only its problems are worth a word.
          callbacks: {
            onRemoteStream: () => undefined,
            onRemoteStreamRemoved: () => undefined,
            onPeerState: (_peer, state) => console.info(`recording uplink: ${state}`),
            onNotice: (message, kind) => callbacks.onNotice(t('meeting.recordingNotice', { message }), kind),
          },
        },
        this.videoSource,
      )
      this.uplink.start([])
      console.info('recording uplink: opened')
    } else if (!recorded && this.uplink) {
      this.uplink.close()
      this.uplink = null
      console.info('recording uplink: closed')
    }
  }

  start(existing: ParticipantInfo[]): void {
    this.mesh.start(existing)
  }

  userJoined(p: ParticipantInfo): void {
    this.mesh.userJoined(p)
  }

  userLeft(userId: string): void {
    this.mesh.userLeft(userId)
  }

  signal(fromUserId: string, signal: Signal): void {
    this.mesh.signal(fromUserId, signal)
  }

  async setLocalTrack(
    kind: 'audio' | 'video',
    track: MediaStreamTrack | null,
    stream: MediaStream | null,
    source?: TrackSource,
  ): Promise<void> {
    this.localStream = stream
    if (kind === 'video' && source) this.videoSource = source
    await Promise.all([this.mesh.setLocalTrack(kind, track, stream, source), this.uplink?.setLocalTrack(kind, track, stream, source)])
  }

  peers(): PeerDebugInfo[] {
    const out = this.mesh.peers()
    for (const p of this.uplink?.peers() ?? []) out.push({ ...p, userId: 'recording-uplink' })
    return out
  }

  setIceServers(servers: RTCIceServer[]): void {
    this.iceServers = servers
    this.mesh.setIceServers(servers)
    this.uplink?.setIceServers(servers)
  }

  async stats(): Promise<Record<string, RTCStatsReport>> {
    const out = await this.mesh.stats()
    const up = await this.uplink?.stats()
    if (up?.publish) out['recording-uplink'] = up.publish
    return out
  }

  remoteStats(): Promise<Record<string, RemoteMediaStats>> {
    return this.mesh.remoteStats()
  }

  close(): void {
    this.closed = true
    this.uplink?.close()
    this.uplink = null
    this.mesh.close()
  }
}
