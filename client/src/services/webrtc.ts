// WebRTC helpers for one peer-to-peer link, following the guide's phases (create the
// RTCPeerConnection, add local tracks, offer/answer, exchange ICE candidates) made robust with
// the "perfect negotiation" pattern:
//   - both sides let `negotiationneeded` drive offers, so adding a track later just works;
//   - on an offer collision ("glare") the *impolite* side ignores the incoming offer and the
//     *polite* side rolls its own offer back (setRemoteDescription does it implicitly);
//   - ICE candidates that arrive before a remote description are queued, not dropped;
//   - signals are handled one at a time, in order.
import type { Signal } from './protocol'
import { isCandidate, isDescription } from './protocol'

/** The lexicographically smaller userId is the polite peer; both sides compute the same answer. */
export function isPolite(selfId: string, remoteId: string): boolean {
  return selfId < remoteId
}

export interface OfferDecisionInput {
  descriptionType: RTCSdpType
  makingOffer: boolean
  signalingState: RTCSignalingState
  isSettingRemoteAnswerPending: boolean
  polite: boolean
}

/** The decision at the heart of perfect negotiation (W3C WebRTC spec, section 10.7). */
export function decideOnDescription(i: OfferDecisionInput): { collision: boolean; ignore: boolean } {
  const readyForOffer =
    !i.makingOffer && (i.signalingState === 'stable' || i.isSettingRemoteAnswerPending)
  const collision = i.descriptionType === 'offer' && !readyForOffer
  return { collision, ignore: collision && !i.polite }
}

/** Candidates received before the remote description is known wait here. */
export class CandidateQueue {
  private pending: RTCIceCandidateInit[] = []

  get size(): number {
    return this.pending.length
  }

  /** Returns true when the candidate can be applied now, false when it was queued. */
  offer(candidate: RTCIceCandidateInit, hasRemoteDescription: boolean): boolean {
    if (hasRemoteDescription) return true
    this.pending.push(candidate)
    return false
  }

  drain(): RTCIceCandidateInit[] {
    const out = this.pending
    this.pending = []
    return out
  }

  clear(): void {
    this.pending = []
  }
}

/** Runs async jobs strictly one after another (signals must be applied in arrival order). */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve()

  run(job: () => Promise<void>): Promise<void> {
    const next = this.tail.then(job, job)
    this.tail = next.catch(() => undefined)
    return next
  }
}

export interface PeerLinkOptions {
  selfId: string
  remoteId: string
  iceServers: RTCIceServer[]
  /** Sends a signal to the remote peer through the signaling server. */
  send: (signal: Signal) => void
  onTrack: (track: MediaStreamTrack, stream: MediaStream) => void
  onStateChange?: (state: RTCPeerConnectionState) => void
  onError?: (err: unknown) => void
  /** For tests: a factory instead of `new RTCPeerConnection`. */
  createPeerConnection?: (config: RTCConfiguration) => RTCPeerConnection
  /** The connection's generation, sent with every signal when above 0 (see meshTransport). */
  gen?: number
}

/** One RTCPeerConnection to one remote participant, negotiated with perfect negotiation. */
export class PeerLink {
  readonly pc: RTCPeerConnection
  readonly polite: boolean
  readonly remoteId: string
  remoteStream: MediaStream | null = null
  private makingOffer = false
  private ignoreOffer = false
  private isSettingRemoteAnswerPending = false
  private readonly candidates = new CandidateQueue()
  private readonly serial = new SerialQueue()
  private closed = false
  private readonly senders = new Map<string, RTCRtpSender>()

  constructor(private readonly o: PeerLinkOptions) {
    this.remoteId = o.remoteId
    this.polite = isPolite(o.selfId, o.remoteId)
    const config: RTCConfiguration = { iceServers: o.iceServers }
    this.pc = o.createPeerConnection ? o.createPeerConnection(config) : new RTCPeerConnection(config)

    this.pc.onnegotiationneeded = () => {
      void this.negotiate()
    }
    this.pc.onicecandidate = (ev) => {
      if (ev.candidate) this.send({ candidate: ev.candidate.toJSON() })
    }
    this.pc.ontrack = (ev) => {
      // One stream per remote participant, whatever stream ids the sender used. A new
      // MediaStream object each time, so a <video> showing it picks up the new track.
      const others = (this.remoteStream?.getTracks() ?? []).filter(
        (t) => t.kind !== ev.track.kind && t.readyState === 'live',
      )
      this.remoteStream = new MediaStream([...others, ev.track])
      this.o.onTrack(ev.track, this.remoteStream)
    }
    // Repairs (ICE restart, a new connection) are decided by the owner of the link
    // (MeshTransport), which sees the states of this link and of the ones it replaces.
    this.pc.onconnectionstatechange = () => {
      this.o.onStateChange?.(this.pc.connectionState)
    }
  }

  /** This link's generation: each new connection to the same peer has a higher one. */
  get gen(): number {
    return this.o.gen ?? 0
  }

  /** Asks for new ICE credentials; the offer follows through `negotiationneeded`. */
  restartIce(): void {
    if (!this.closed) this.pc.restartIce()
  }

  /** Sends local tracks; when `recvOnlyKinds` is given, also asks to receive those kinds. */
  addLocalTracks(stream: MediaStream | null, recvOnlyKinds: ('audio' | 'video')[] = []): void {
    if (stream) {
      for (const track of stream.getTracks()) {
        if (this.senders.has(track.kind)) continue
        this.senders.set(track.kind, this.pc.addTrack(track, stream))
      }
    }
    for (const kind of recvOnlyKinds) {
      if (!this.senders.has(kind)) this.pc.addTransceiver(kind, { direction: 'recvonly' })
    }
  }

  /**
   * Sends `track` in place of the current track of that kind (screen share, device change,
   * camera back). Replacing needs no renegotiation; a kind not sent yet is added (reusing a
   * receive-only transceiver when there is one), which triggers `negotiationneeded`.
   */
  async setTrack(
    kind: 'audio' | 'video',
    track: MediaStreamTrack | null,
    stream: MediaStream | null,
  ): Promise<void> {
    if (this.closed) return
    const sender = this.senders.get(kind)
    if (sender) {
      await sender.replaceTrack(track)
      return
    }
    if (!track) return
    const recv = this.pc
      .getTransceivers()
      .find((t) => t.currentDirection !== 'stopped' && t.receiver.track?.kind === kind && !t.sender.track)
    if (recv) {
      await recv.sender.replaceTrack(track)
      if (stream) recv.sender.setStreams?.(stream)
      if (recv.direction === 'recvonly') recv.direction = 'sendrecv'
      else if (recv.direction === 'inactive') recv.direction = 'sendonly'
      this.senders.set(kind, recv.sender)
      return
    }
    this.senders.set(kind, this.pc.addTrack(track, ...(stream ? [stream] : [])))
  }

  private send(signal: Signal): void {
    this.o.send(this.gen > 0 ? { ...signal, gen: this.gen } : signal)
  }

  private async negotiate(): Promise<void> {
    if (this.closed) return
    try {
      this.makingOffer = true
      await this.pc.setLocalDescription()
      const d = this.pc.localDescription
      if (d) this.send({ type: d.type, sdp: d.sdp })
    } catch (err) {
      this.o.onError?.(err)
    } finally {
      this.makingOffer = false
    }
  }

  /** Applies a signal from the remote peer (in arrival order). */
  handleSignal(signal: Signal): Promise<void> {
    return this.serial.run(() => this.applySignal(signal))
  }

  private async applySignal(signal: Signal): Promise<void> {
    if (this.closed) return
    try {
      if (isDescription(signal)) {
        const { ignore } = decideOnDescription({
          descriptionType: signal.type,
          makingOffer: this.makingOffer,
          signalingState: this.pc.signalingState,
          isSettingRemoteAnswerPending: this.isSettingRemoteAnswerPending,
          polite: this.polite,
        })
        this.ignoreOffer = ignore
        if (ignore) return
        this.isSettingRemoteAnswerPending = signal.type === 'answer'
        await this.pc.setRemoteDescription({ type: signal.type, sdp: signal.sdp })
        this.isSettingRemoteAnswerPending = false
        await this.flushCandidates()
        if (signal.type === 'offer') {
          await this.pc.setLocalDescription()
          const d = this.pc.localDescription
          if (d) this.send({ type: d.type, sdp: d.sdp })
        }
      } else if (isCandidate(signal)) {
        if (this.candidates.offer(signal.candidate, !!this.pc.remoteDescription)) {
          await this.addCandidate(signal.candidate)
        }
      }
    } catch (err) {
      this.isSettingRemoteAnswerPending = false
      this.o.onError?.(err)
    }
  }

  private async flushCandidates(): Promise<void> {
    for (const c of this.candidates.drain()) await this.addCandidate(c)
  }

  private async addCandidate(c: RTCIceCandidateInit): Promise<void> {
    try {
      await this.pc.addIceCandidate(c)
    } catch (err) {
      // Candidates of an offer we ignored fail to apply; that is expected.
      if (!this.ignoreOffer) throw err
    }
  }

  async getStats(): Promise<RTCStatsReport | null> {
    if (this.closed) return null
    return this.pc.getStats()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.candidates.clear()
    this.pc.onnegotiationneeded = null
    this.pc.onicecandidate = null
    this.pc.ontrack = null
    this.pc.onconnectionstatechange = null
    for (const t of this.remoteStream?.getTracks() ?? []) t.stop()
    this.pc.close()
  }

  get isClosed(): boolean {
    return this.closed
  }
}
