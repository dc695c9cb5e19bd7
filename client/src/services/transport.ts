// The media transport of a room is pluggable: a P2P room uses a full mesh of peer connections
// (MeshTransport), an SFU room one publish and one subscribe connection to the server
// (SfuTransport). useWebRTC talks to either through this interface.
import type { ParticipantInfo, Signal } from './protocol'
import type { SignalingClient } from './socket'

/** How a simulcast camera is reduced for this browser's connection (sfu-layer). */
export type Reduced = 'picture' | 'frameRate'

export type PeerState = RTCPeerConnectionState | 'new'

/** What a local track carries (the SFU tells subscribers; a mesh does not need it). */
export type TrackSource = 'camera' | 'microphone' | 'screen'

export interface TransportCallbacks {
  /** A remote participant's media (one stream per participant; tracks may be added later). */
  onRemoteStream: (userId: string, stream: MediaStream) => void
  onRemoteStreamRemoved: (userId: string) => void
  onPeerState: (userId: string, state: PeerState) => void
  /** A problem the user should know about (shown as a toast or notice). */
  onNotice: (message: string, kind?: 'error' | 'info') => void
  /** A remote participant's track this browser cannot decode (its m-line was rejected). */
  onUnsupportedTrack?: (userId: string, kind: 'audio' | 'video') => void
  /** A connection is being repaired (`attempt` counts from 1) or has come back. `peer` is
   * the remote userId (P2P) or 'publish'/'subscribe' (SFU). */
  onRecovery?: (peer: string, state: 'recovering' | 'recovered', attempt: number) => void
}

/** What arrives from one remote participant, from getStats of the connection carrying it. */
export interface RemoteMediaStats {
  video?: {
    framesPerSecond: number
    framesDecoded: number
    packetsLost: number
    packetsReceived: number
    bytesReceived: number
    frameWidth?: number
    frameHeight?: number
  }
  audio?: { packetsLost: number; packetsReceived: number; bytesReceived: number; jitter: number }
  rttMs?: number
  /** Local candidate type of the selected pair: host/srflx/prflx/relay. */
  candidateType?: string
  /** SFU simulcast: the server sends a smaller layer of this person's camera than the tile
   * could show (`picture`), or the full one at a lower frame rate (`frameRate`: its upper
   * temporal layers dropped), because of this browser's connection (`sfu-layer`). */
  reducedLayer?: Reduced
  connectionState: PeerState
}

export interface TransportContext {
  selfId: string
  signaling: SignalingClient
  iceServers: RTCIceServer[]
  localStream: MediaStream | null
  callbacks: TransportCallbacks
  /** For tests: a factory instead of `new RTCPeerConnection`. */
  createPeerConnection?: (config: RTCConfiguration) => RTCPeerConnection
}

export interface PeerDebugInfo {
  userId: string
  connectionState: string
  iceConnectionState: string
  signalingState: string
}

export interface MediaTransport {
  readonly kind: 'mesh' | 'sfu'
  /** Starts media with the participants already in the room (right after the join answer). */
  start(existing: ParticipantInfo[]): void
  userJoined(p: ParticipantInfo): void
  userLeft(userId: string): void
  /** A `signal-receive` from another participant (mesh only). */
  signal(fromUserId: string, signal: Signal): void
  /** Replaces (or starts, or stops with null) the local track of a kind on every connection. */
  setLocalTrack(
    kind: 'audio' | 'video',
    track: MediaStreamTrack | null,
    stream: MediaStream | null,
    source?: TrackSource,
  ): Promise<void>
  /** The room is (or is no longer) recorded on the server: a mesh then also publishes to
   * the server on a publish-only connection (#19). An SFU transport already does. */
  setRecorded?(recorded: boolean): void
  peers(): PeerDebugInfo[]
  /** New ICE servers (renewed TURN credentials) for the connections already open: their
   * next gathering (an ICE restart) uses them. New connections read TransportContext's list. */
  setIceServers(servers: RTCIceServer[]): void
  /** Raw stats of every connection, keyed by the remote userId (or 'publish'/'subscribe'). */
  stats(): Promise<Record<string, RTCStatsReport>>
  /** What arrives from each remote participant, keyed by userId (cheap enough every ~2 s). */
  remoteStats(): Promise<Record<string, RemoteMediaStats>>
  close(): void
}

/** Gives an open connection new ICE servers; a closed one, or a browser that refuses the
 * change, keeps its own (the next new connection gets them anyway). */
export function updateIceServers(pc: RTCPeerConnection, servers: RTCIceServer[]): void {
  if (pc.connectionState === 'closed') return
  try {
    pc.setConfiguration({ ...pc.getConfiguration(), iceServers: servers })
  } catch (err) {
    console.warn('setConfiguration', err)
  }
}
