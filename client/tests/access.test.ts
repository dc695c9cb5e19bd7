import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  adoptUrlToken,
  ALL_GRANTS,
  controlsFor,
  embedTokenOf,
  endedText,
  forgetJoinToken,
  joinProblem,
  lobbyDeniedText,
  moderationText,
  muteRequestText,
  normalizeGrants,
  removedText,
  saveJoinToken,
  storedJoinToken,
  takeToken,
  tokenHints,
} from '../src/lib/access'
import { createRoomBody } from '../src/pages/Home'

function b64url(s: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(s))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}
const jwt = (claims: object) => `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(JSON.stringify(claims))}.c2ln`

function memoryStore() {
  const m = new Map<string, string>()
  return {
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
    removeItem: (k: string) => void m.delete(k),
    m,
  }
}

describe('the join token in the address', () => {
  it('is read from ?token= and removed, keeping the other parameters', () => {
    expect(takeToken('/room/r1', '?token=abc.def.ghi&raw_audio=1', '')).toEqual({
      token: 'abc.def.ghi',
      cleaned: '/room/r1?raw_audio=1',
    })
  })

  it('is read from a #token= fragment (an embedding page)', () => {
    expect(takeToken('/room/r1', '', '#token=t.o.k')).toEqual({ token: 't.o.k', cleaned: '/room/r1' })
    expect(takeToken('/room/r1', '?name=Ann', '#x=1&token=t')).toEqual({ token: 't', cleaned: '/room/r1?name=Ann#x=1' })
  })

  it('leaves an address without a token as it is', () => {
    expect(takeToken('/room/r1', '?name=Ann', '')).toEqual({ token: null, cleaned: '/room/r1?name=Ann' })
    expect(takeToken('/room/r1', '?token=', '')).toEqual({ token: null, cleaned: '/room/r1' })
  })

  afterEach(() => vi.unstubAllGlobals())

  it('adoptUrlToken replaces the address at once and keeps the token for the tab', () => {
    const store = memoryStore()
    const replaceState = vi.fn()
    vi.stubGlobal('history', { state: null, replaceState })
    vi.stubGlobal('sessionStorage', store)
    const token = adoptUrlToken('r1', { pathname: '/room/r1', search: '?token=a.b.c&raw_audio=1', hash: '' })
    expect(token).toBe('a.b.c')
    expect(replaceState).toHaveBeenCalledWith(null, '', '/room/r1?raw_audio=1')
    // A reload (no token in the address any more) finds it again; another room does not.
    expect(adoptUrlToken('r1', { pathname: '/room/r1', search: '', hash: '' })).toBe('a.b.c')
    expect(adoptUrlToken('r2', { pathname: '/room/r2', search: '', hash: '' })).toBeNull()
    expect(replaceState).toHaveBeenCalledTimes(1)
  })

  it('keeps, finds and forgets a token per room', () => {
    const store = memoryStore()
    saveJoinToken('r1', 'tok', store)
    expect(storedJoinToken('r1', store)).toBe('tok')
    expect(storedJoinToken('r2', store)).toBeNull()
    forgetJoinToken('r1', store)
    expect(storedJoinToken('r1', store)).toBeNull()
  })

  it('tokenHints reads name, identity and grants without verifying; junk gives null', () => {
    const t = jwt({ sub: 'alice', name: 'Alice Ö', room: 'r1', exp: 99, grants: { publish: { video: false } } })
    expect(tokenHints(t)).toEqual({ name: 'Alice Ö', sub: 'alice', exp: 99, grants: { publish: { video: false } } })
    expect(tokenHints('not-a-jwt')).toBeNull()
    expect(tokenHints('a.%%%.c')).toBeNull()
    expect(tokenHints(jwt({ sub: 'x' }))?.name).toBeNull()
  })

  it('takes a token only from the embedding parent, in the agreed message', () => {
    expect(embedTokenOf({ type: 'sfu-join-token', token: ' t ' }, true)).toBe('t')
    expect(embedTokenOf({ type: 'sfu-join-token', token: 't' }, false)).toBeNull()
    expect(embedTokenOf({ type: 'other', token: 't' }, true)).toBeNull()
    expect(embedTokenOf('sfu-join-token', true)).toBeNull()
    expect(embedTokenOf({ type: 'sfu-join-token', token: 5 }, true)).toBeNull()
  })
})

describe('join refusals', () => {
  it('ask for a password, say it was wrong, or say to wait', () => {
    expect(joinProblem('password_required')).toEqual({ kind: 'password', error: 'password_required', text: null })
    expect(joinProblem('wrong_password')).toMatchObject({ kind: 'password', text: 'Wrong password. Try again.' })
    expect(joinProblem('rate_limited', 'try again in 40 s')).toMatchObject({ kind: 'password', error: 'rate_limited' })
    expect((joinProblem('rate_limited') as { text: string }).text).toMatch(/^Too many attempts\. Wait/)
  })

  it('a full meeting gets its page without repeating the server message', () => {
    expect(joinProblem('room_full', 'the room is full')).toEqual({
      kind: 'page',
      error: 'room_full',
      title: 'This meeting is full',
      text: 'A seat frees up when someone leaves: try again in a moment.',
      home: true,
    })
  })

  it('each access refusal gets its own full page', () => {
    const titles = Object.fromEntries(
      ['unknown_room', 'token_required', 'invalid_token', 'token_expired', 'removed', 'forbidden'].map((c) => {
        const p = joinProblem(c, 'detail')
        expect(p?.kind).toBe('page')
        return [c, (p as { title: string }).title]
      }),
    )
    expect(titles.unknown_room).toBe('This meeting does not exist')
    expect(titles.token_expired).toBe('This invitation link has expired')
    expect(new Set(Object.values(titles)).size).toBe(6)
  })

  it("keeps the server's detail (missing grant, ban time) except for unknown rooms", () => {
    expect((joinProblem('removed', 'for 10 minutes') as { text: string }).text).toContain('for 10 minutes')
    expect((joinProblem('forbidden', 'needs the join grant') as { text: string }).text).toContain('needs the join grant')
    expect((joinProblem('unknown_room', 'unknown room abc') as { text: string }).text).not.toContain('abc')
  })

  it('other errors are not access refusals', () => {
    expect(joinProblem('invalid_payload')).toBeNull()
    expect(joinProblem('user_id_taken')).toBeNull()
  })

  it('lobby denials, removal and the end of the meeting say why', () => {
    expect(lobbyDeniedText('denied')).toBe('A moderator declined your request to join.')
    expect(lobbyDeniedText('denied', 'Alice did not let you in: not today')).toBe('Alice did not let you in: not today')
    expect(lobbyDeniedText('timeout')).toBe('No one let you in. Try again later.')
    expect(lobbyDeniedText('room_closed')).toBe('The meeting has ended.')
    expect(removedText('Alice', 'spam')).toBe('Alice removed you from the meeting: spam')
    expect(removedText(null, '')).toBe('A moderator removed you from the meeting.')
    expect(endedText('Alice', 'ended')).toBe('Alice ended the meeting for everyone.')
    expect(endedText(null, 'admin')).toBe('The meeting was closed.')
    expect(muteRequestText('audio', 'Alice')).toMatch(/^Alice muted you\./)
    expect(muteRequestText('video', undefined)).toBe('A moderator turned off your camera.')
  })
})

describe('grants and the controls they show', () => {
  it('normalizes what the server sends (publish as a bool or per source; none: the old defaults)', () => {
    expect(normalizeGrants(undefined)).toEqual(ALL_GRANTS)
    expect(normalizeGrants({ publish: false }).publish).toEqual({ audio: false, video: false, screen: false })
    expect(normalizeGrants({ publish: { audio: true, video: false } }).publish).toEqual({ audio: true, video: false, screen: true })
    expect(normalizeGrants({ chat: false, record: true })).toMatchObject({ chat: false, record: true, moderate: false, subscribe: true })
  })

  it('a participant without record sees no Record button; a moderator does, in either mode', () => {
    const g = normalizeGrants({ record: false })
    expect(controlsFor(g, 'participant', 'sfu').record).toBe(false)
    expect(controlsFor(g, 'moderator', 'sfu').record).toBe(true)
    expect(controlsFor(normalizeGrants({ record: true }), 'participant', 'sfu').record).toBe(true)
    expect(controlsFor(normalizeGrants({ record: true }), 'participant', 'p2p').record).toBe(true)
    expect(controlsFor(g, 'moderator', 'p2p').record).toBe(true)
    expect(controlsFor(normalizeGrants({ record: true }), 'participant', null).record).toBe(false)
  })

  it('publish grants enable the media buttons; chat the chat input; moderation follows the role', () => {
    const c = controlsFor(normalizeGrants({ publish: { audio: false, video: true, screen: false }, chat: false }), 'participant', 'p2p')
    expect(c).toEqual({ mic: false, camera: true, screen: false, chatInput: false, record: false, moderate: false })
    expect(controlsFor(ALL_GRANTS, 'moderator', 'p2p').moderate).toBe(true)
    expect(controlsFor(normalizeGrants({ moderate: true }), 'participant', 'p2p').moderate).toBe(true)
  })
})

describe('moderation events as toasts', () => {
  const e = { by: 'a', byName: 'Alice', target: 'b', targetName: 'Bob' }
  it('name who did what to whom, from each point of view', () => {
    expect(moderationText({ ...e, action: 'mute', detail: 'audio' }, 'c')).toBe('Alice muted Bob')
    expect(moderationText({ ...e, action: 'mute', detail: 'video' }, 'c')).toBe("Alice turned off Bob's camera")
    expect(moderationText({ ...e, action: 'mute', detail: 'audio' }, 'a')).toBe('You muted Bob')
    expect(moderationText({ ...e, action: 'remove', detail: 'spam' }, 'c')).toBe('Alice removed Bob from the meeting: spam')
    expect(moderationText({ ...e, action: 'set-role', detail: 'moderator' }, 'b')).toBe('Alice made you a moderator')
    expect(moderationText({ ...e, action: 'set-role', detail: 'participant' }, 'c')).toBe("Alice removed Bob's moderator role")
    expect(moderationText({ by: 'a', byName: 'Alice', action: 'lock' }, 'c')).toMatch(/^Alice locked the meeting/)
    expect(moderationText({ by: null, byName: null, action: 'unlock' }, 'c')).toBe('The administrator unlocked the meeting')
    expect(moderationText({ by: 'a', byName: 'Alice', action: 'lobby-admit', targetName: 'Zed' }, 'c')).toBe('Alice let Zed in')
  })
  it('the target of a mute or a removal gets its own message instead', () => {
    expect(moderationText({ ...e, action: 'mute', detail: 'audio' }, 'b')).toBeNull()
    expect(moderationText({ ...e, action: 'remove' }, 'b')).toBeNull()
    expect(moderationText({ ...e, action: 'stop-screen-share' }, 'b')).toBeNull()
    expect(moderationText({ by: 'a', byName: 'Alice', action: 'end-meeting' }, 'c')).toBeNull()
  })
})

describe('the start page', () => {
  it('creates a room with a password only when one is given', () => {
    expect(createRoomBody('sfu', '')).toEqual({ mode: 'sfu' })
    expect(createRoomBody('p2p', 'pw')).toEqual({ mode: 'p2p', access: 'password', password: 'pw' })
  })
})
