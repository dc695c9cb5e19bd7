// A small stand-in for RTCPeerConnection: models the signaling state machine (including the
// implicit rollback of setRemoteDescription(offer) in have-local-offer), the rule that
// addIceCandidate needs a remote description, and records what happened.

const tick = () => new Promise<void>((r) => setTimeout(r, 0))
let counter = 0

export class FakePC {
  id = ++counter
  signalingState: RTCSignalingState = 'stable'
  connectionState: RTCPeerConnectionState = 'new'
  iceConnectionState: RTCIceConnectionState = 'new'
  localDescription: RTCSessionDescriptionInit | null = null
  remoteDescription: RTCSessionDescriptionInit | null = null
  candidates: RTCIceCandidateInit[] = []
  log: string[] = []
  closed = false
  tracks: unknown[] = []
  transceivers: { kind: string; direction: string }[] = []
  onnegotiationneeded: (() => void) | null = null
  onicecandidate: ((e: { candidate: { toJSON(): RTCIceCandidateInit } | null }) => void) | null = null
  ontrack: ((e: unknown) => void) | null = null
  onconnectionstatechange: (() => void) | null = null

  constructor(public config: RTCConfiguration) {}

  getConfiguration(): RTCConfiguration {
    return this.config
  }

  setConfiguration(config: RTCConfiguration): void {
    if (this.connectionState === 'closed') throw new Error('InvalidStateError')
    this.config = config
  }

  async setLocalDescription(d?: RTCSessionDescriptionInit): Promise<void> {
    const type = d?.type ?? (this.signalingState === 'have-remote-offer' ? 'answer' : 'offer')
    await tick()
    if (type === 'offer') {
      if (this.signalingState !== 'stable' && this.signalingState !== 'have-local-offer') throw new Error('InvalidStateError')
      this.signalingState = 'have-local-offer'
    } else {
      if (this.signalingState !== 'have-remote-offer') throw new Error('InvalidStateError')
      this.signalingState = 'stable'
    }
    this.localDescription = { type, sdp: `${type}-${this.id}` }
    this.log.push(`sld:${type}`)
  }

  async setRemoteDescription(d: RTCSessionDescriptionInit): Promise<void> {
    await tick()
    if (d.type === 'offer') {
      if (this.signalingState === 'have-local-offer') this.log.push('rollback')
      else if (this.signalingState !== 'stable') throw new Error('InvalidStateError')
      this.signalingState = 'have-remote-offer'
    } else if (d.type === 'answer') {
      if (this.signalingState !== 'have-local-offer') throw new Error('InvalidStateError: answer in ' + this.signalingState)
      this.signalingState = 'stable'
    }
    this.remoteDescription = d
    this.log.push(`srd:${d.type}`)
  }

  async addIceCandidate(c: RTCIceCandidateInit): Promise<void> {
    if (!this.remoteDescription) throw new Error('InvalidStateError: no remote description')
    this.candidates.push(c)
    this.log.push(`cand:${c.candidate}`)
  }

  addTrack(track: unknown): RTCRtpSender {
    this.tracks.push(track)
    return { replaceTrack: async () => undefined } as unknown as RTCRtpSender
  }

  addTransceiver(kind: string, init: { direction: string }): void {
    this.transceivers.push({ kind, direction: init.direction })
  }

  getTransceivers(): RTCRtpTransceiver[] {
    return []
  }

  restartIce(): void {
    this.log.push('restartIce')
  }

  async getStats(): Promise<RTCStatsReport> {
    return new Map() as unknown as RTCStatsReport
  }

  close(): void {
    this.closed = true
    this.signalingState = 'closed'
  }
}

export const settle = async (ms = 30) => {
  await new Promise((r) => setTimeout(r, ms))
}
