// The media transport of a room is pluggable: a P2P room uses a full mesh of peer connections
// (MeshTransport), an SFU room one publish and one subscribe connection to the server
// (SfuTransport). useWebRTC talks to either through this interface.
import type { ParticipantInfo, Signal } from './protocol'
import type { SignalingClient } from './socket'

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
  peers(): PeerDebugInfo[]
  /** Raw stats of every connection, keyed by the remote userId (or 'publish'/'subscribe'). */
  stats(): Promise<Record<string, RTCStatsReport>>
  close(): void
}
