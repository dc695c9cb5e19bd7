import { describe, expect, it } from 'vitest'
import type { Signal } from '../src/services/protocol'
import { CandidateQueue, decideOnDescription, isPolite, PeerLink, SerialQueue } from '../src/services/webrtc'
import { FakePC, settle } from './fakePeerConnection'

function makeLink(selfId: string, remoteId: string) {
  const sent: Signal[] = []
  let pc!: FakePC
  const errors: unknown[] = []
  const link = new PeerLink({
    selfId,
    remoteId,
    iceServers: [],
    send: (s) => sent.push(s),
    onTrack: () => undefined,
    onError: (e) => errors.push(e),
    createPeerConnection: (config) => {
      pc = new FakePC(config)
      return pc as unknown as RTCPeerConnection
    },
  })
  return { link, pc, sent, errors }
}

describe('politeness', () => {
  it('exactly one side of a pair is polite', () => {
    expect(isPolite('a', 'b')).toBe(true)
    expect(isPolite('b', 'a')).toBe(false)
    for (const [x, y] of [['u-1', 'u-2'], ['zz', 'z'], ['A', 'a']]) {
      expect(isPolite(x, y)).not.toBe(isPolite(y, x))
    }
  })
})

describe('decideOnDescription', () => {
  const base = { makingOffer: false, signalingState: 'stable' as RTCSignalingState, isSettingRemoteAnswerPending: false }
  it('an offer in stable state is no collision', () => {
    expect(decideOnDescription({ ...base, descriptionType: 'offer', polite: false })).toEqual({ collision: false, ignore: false })
  })
  it('an offer while making an offer collides: impolite ignores, polite accepts', () => {
    expect(decideOnDescription({ ...base, makingOffer: true, descriptionType: 'offer', polite: false })).toEqual({ collision: true, ignore: true })
    expect(decideOnDescription({ ...base, makingOffer: true, descriptionType: 'offer', polite: true })).toEqual({ collision: true, ignore: false })
  })
  it('an offer in have-local-offer collides unless an answer is being applied', () => {
    expect(decideOnDescription({ ...base, signalingState: 'have-local-offer', descriptionType: 'offer', polite: false }).ignore).toBe(true)
    expect(decideOnDescription({ ...base, signalingState: 'have-local-offer', isSettingRemoteAnswerPending: true, descriptionType: 'offer', polite: false }).collision).toBe(false)
  })
  it('answers never collide', () => {
    expect(decideOnDescription({ ...base, signalingState: 'have-local-offer', descriptionType: 'answer', polite: false })).toEqual({ collision: false, ignore: false })
  })
})

describe('CandidateQueue', () => {
  it('queues until a remote description exists, then drains in order', () => {
    const q = new CandidateQueue()
    expect(q.offer({ candidate: 'a' }, false)).toBe(false)
    expect(q.offer({ candidate: 'b' }, false)).toBe(false)
    expect(q.size).toBe(2)
    expect(q.offer({ candidate: 'c' }, true)).toBe(true)
    expect(q.drain().map((c) => c.candidate)).toEqual(['a', 'b'])
    expect(q.size).toBe(0)
  })
})

describe('SerialQueue', () => {
  it('runs jobs one at a time in order, even after a failure', async () => {
    const q = new SerialQueue()
    const order: string[] = []
    const slow = q.run(async () => {
      await settle(10)
      order.push('slow')
    })
    const failing = q.run(async () => {
      order.push('fail')
      throw new Error('x')
    })
    const fast = q.run(async () => {
      order.push('fast')
    })
    await slow
    await expect(failing).rejects.toThrow('x')
    await fast
    expect(order).toEqual(['slow', 'fail', 'fast'])
  })
})

describe('PeerLink (perfect negotiation)', () => {
  it('negotiationneeded sends an offer; the answer brings it to stable', async () => {
    const { link, pc, sent } = makeLink('a', 'b')
    pc.onnegotiationneeded!()
    await settle()
    expect(sent).toEqual([{ type: 'offer', sdp: `offer-${pc.id}` }])
    await link.handleSignal({ type: 'answer', sdp: 'x' })
    expect(pc.signalingState).toBe('stable')
  })

  it('answers an offer', async () => {
    const { link, pc, sent } = makeLink('b', 'a')
    await link.handleSignal({ type: 'offer', sdp: 'o' })
    expect(pc.log).toEqual(['srd:offer', 'sld:answer'])
    expect(sent).toEqual([{ type: 'answer', sdp: `answer-${pc.id}` }])
  })

  it('queues candidates that arrive before the offer and applies them after it', async () => {
    const { link, pc } = makeLink('b', 'a')
    const c1 = link.handleSignal({ candidate: { candidate: 'c1', sdpMid: '0' } })
    const c2 = link.handleSignal({ candidate: { candidate: 'c2', sdpMid: '0' } })
    await Promise.all([c1, c2])
    expect(pc.candidates).toEqual([])
    await link.handleSignal({ type: 'offer', sdp: 'o' })
    await link.handleSignal({ candidate: { candidate: 'c3', sdpMid: '0' } })
    expect(pc.log).toEqual(['srd:offer', 'cand:c1', 'cand:c2', 'sld:answer', 'cand:c3'])
  })

  it('impolite side ignores a colliding offer (and its candidates) without error', async () => {
    const { link, pc, sent, errors } = makeLink('b', 'a') // b > a: impolite
    expect(link.polite).toBe(false)
    pc.onnegotiationneeded!()
    await settle()
    expect(pc.signalingState).toBe('have-local-offer')
    await link.handleSignal({ type: 'offer', sdp: 'theirs' })
    await link.handleSignal({ candidate: { candidate: 'late', sdpMid: '0' } })
    expect(pc.signalingState).toBe('have-local-offer')
    expect(sent).toHaveLength(1) // only our own offer
    expect(errors).toEqual([])
  })

  it('polite side rolls back its offer and answers the remote one', async () => {
    const { link, pc, sent } = makeLink('a', 'b')
    expect(link.polite).toBe(true)
    pc.onnegotiationneeded!()
    await settle()
    await link.handleSignal({ type: 'offer', sdp: 'theirs' })
    expect(pc.log).toContain('rollback')
    expect(pc.signalingState).toBe('stable')
    expect(sent.at(-1)).toEqual({ type: 'answer', sdp: `answer-${pc.id}` })
  })

  it('two links that offer at the same time end up stable (glare)', async () => {
    const a = makeLink('alice', 'bob')
    const b = makeLink('bob', 'alice')
    // Wire them through an asynchronous "server".
    const relay = (from: ReturnType<typeof makeLink>, to: ReturnType<typeof makeLink>) => {
      const orig = from.sent.push.bind(from.sent)
      from.sent.push = (...items: Signal[]) => {
        for (const s of items) setTimeout(() => void to.link.handleSignal(s), 1)
        return orig(...items)
      }
    }
    relay(a, b)
    relay(b, a)
    a.pc.onnegotiationneeded!()
    b.pc.onnegotiationneeded!()
    await settle(100)
    expect(a.pc.signalingState).toBe('stable')
    expect(b.pc.signalingState).toBe('stable')
    expect(a.errors).toEqual([])
    expect(b.errors).toEqual([])
    // alice is polite: she rolled back; bob's offer won.
    expect(a.pc.log).toContain('rollback')
    expect(b.pc.log).not.toContain('rollback')
  })

  it('close() closes the connection and ignores later signals', async () => {
    const { link, pc, sent } = makeLink('a', 'b')
    link.close()
    expect(pc.closed).toBe(true)
    expect(link.isClosed).toBe(true)
    await link.handleSignal({ type: 'offer', sdp: 'o' })
    expect(sent).toEqual([])
  })

  it('ICE candidates from the browser are sent as {candidate}', () => {
    const { pc, sent } = makeLink('a', 'b')
    pc.onicecandidate!({ candidate: { toJSON: () => ({ candidate: 'cand', sdpMid: '0', sdpMLineIndex: 0 }) } })
    pc.onicecandidate!({ candidate: null })
    expect(sent).toEqual([{ candidate: { candidate: 'cand', sdpMid: '0', sdpMLineIndex: 0 } }])
  })

  it('leaves repairs to its owner: a failed state is reported, restartIce() restarts', () => {
    const states: string[] = []
    let pc!: FakePC
    const link = new PeerLink({
      selfId: 'a',
      remoteId: 'b',
      iceServers: [],
      send: () => undefined,
      onTrack: () => undefined,
      onStateChange: (s) => states.push(s),
      createPeerConnection: (config) => (pc = new FakePC(config)) as unknown as RTCPeerConnection,
    })
    pc.connectionState = 'failed'
    pc.onconnectionstatechange!()
    expect(states).toEqual(['failed'])
    expect(pc.log).not.toContain('restartIce')
    link.restartIce()
    expect(pc.log).toContain('restartIce')
  })

  it('tags its signals with its generation when above 0', async () => {
    const sent: Signal[] = []
    let pc!: FakePC
    new PeerLink({
      selfId: 'a',
      remoteId: 'b',
      iceServers: [],
      gen: 2,
      send: (s) => sent.push(s),
      onTrack: () => undefined,
      createPeerConnection: (config) => (pc = new FakePC(config)) as unknown as RTCPeerConnection,
    })
    pc.onnegotiationneeded!()
    pc.onicecandidate!({ candidate: { toJSON: () => ({ candidate: 'c' }) } })
    await settle()
    expect(sent).toEqual([{ candidate: { candidate: 'c' }, gen: 2 }, { type: 'offer', sdp: `offer-${pc.id}`, gen: 2 }])
  })
})
