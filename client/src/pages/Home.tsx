import { useEffect, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { rememberRoomPassword } from '../lib/access'
import { rememberName, rememberedName } from '../lib/identity'
import { cleanName, extractRoomId, roomPath } from '../lib/url'
import type { RoomMode, ServerConfig } from '../services/protocol'
import { navigate } from '../router'

/** The server's limit of a meeting's display name (limits.room_name_max_length). */
export const ROOM_NAME_MAX = 100

/** POST /api/rooms: a new room, with a password when one is given and a display name when one
 * is typed (blank: unnamed, the server shows the id). */
export function createRoomBody(mode: RoomMode, password: string, meetingName = ''): Record<string, unknown> {
  const body: Record<string, unknown> = password ? { mode, access: 'password', password } : { mode }
  const name = meetingName.trim()
  if (name) body.name = name
  return body
}

async function createRoom(mode: RoomMode, password: string, meetingName: string): Promise<{ roomId: string; mode: RoomMode }> {
  const res = await fetch('/api/rooms', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(createRoomBody(mode, password, meetingName)),
  })
  const body = (await res.json().catch(() => ({}))) as { roomId?: string; mode?: RoomMode; message?: string; error?: string }
  if (!res.ok || !body.roomId) throw new Error(body.message ?? body.error ?? `HTTP ${res.status}`)
  return { roomId: body.roomId, mode: body.mode ?? mode }
}

export function Home() {
  const { t } = useTranslation()
  // Testing aid: keep ?raw_audio=1 from the start page into the room (see lib/url.ts).
  const rawAudio = new URLSearchParams(location.search).get('raw_audio') === '1'
  const [name, setName] = useState(rememberedName)
  const [mode, setMode] = useState<RoomMode>('p2p')
  const [joinId, setJoinId] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [password, setPassword] = useState('')
  const [meetingName, setMeetingName] = useState('')
  const [config, setConfig] = useState<ServerConfig | null>(null)
  useEffect(() => {
    let live = true
    fetch('/api/config')
      .then((r) => (r.ok ? (r.json() as Promise<ServerConfig>) : null))
      .then((c) => {
        if (!live || !c) return
        setConfig(c)
        if (c.defaultMode === 'sfu' || c.defaultMode === 'p2p') setMode(c.defaultMode) // the operator's choice
      })
      .catch(() => undefined)
    return () => {
      live = false
    }
  }, [])
  // rooms.access = "token": rooms are made by the operator's application (tokens), not here.
  const canCreate = config?.access !== 'token'
  const needsPassword = config?.access === 'password'

  const validName = (): string | null => {
    const n = cleanName(name)
    if (!n) setError(t('common.nameRequired'))
    else rememberName(n)
    return n
  }

  return (
    <main className="page home">
      <h1>{t('home.title')}</h1>
      <p className="muted">{t('home.intro')}</p>
      <label className="field">
        {t('common.yourName')}
        <input aria-label={t('common.yourName')} value={name} maxLength={64} onChange={(e) => setName(e.target.value)} placeholder={t('home.namePlaceholder')} />
      </label>

      {!canCreate && (
        <section className="card" data-testid="token-only">
          <h2>{t('home.newMeeting')}</h2>
          <p className="muted">{t('home.tokenOnly')}</p>
        </section>
      )}
      {canCreate && (
      <section className="card">
        <h2>{t('home.newMeeting')}</h2>
        <fieldset className="mode-choice">
          <legend>{t('home.kind')}</legend>
          <label>
            <input type="radio" name="mode" value="p2p" checked={mode === 'p2p'} onChange={() => setMode('p2p')} />
            {t('home.p2p')}{' '}
            <span className="muted small">{t('home.p2pText')}</span>
          </label>
          <label>
            <input type="radio" name="mode" value="sfu" checked={mode === 'sfu'} onChange={() => setMode('sfu')} />
            {t('home.sfu')}{' '}
            <span className="muted small">{t('home.sfuText')}</span>
          </label>
        </fieldset>
        <label className="field">
          {t('home.meetingNameOptional')}
          <input
            aria-label={t('home.meetingName')}
            value={meetingName}
            maxLength={ROOM_NAME_MAX}
            onChange={(e) => setMeetingName(e.target.value)}
            placeholder={t('home.meetingNamePlaceholder')}
            data-testid="create-meeting-name"
          />
        </label>
        <label className="field">
          {needsPassword ? t('common.password') : t('home.passwordOptional')}
          <input
            type="password"
            aria-label={t('common.meetingPassword')}
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            placeholder={needsPassword ? t('home.passwordRequired') : t('home.passwordAnyone')}
            data-testid="create-password"
          />
        </label>
        <button
          type="button"
          disabled={busy}
          onClick={async () => {
            setError(null)
            const n = validName()
            if (!n) return
            if (needsPassword && !password) {
              setError(t('home.needsPassword'))
              return
            }
            setBusy(true)
            try {
              const room = await createRoom(mode, password, meetingName)
              if (password) rememberRoomPassword(room.roomId, password)
              // The name is remembered: the pre-join screen has it (the creator sees it too).
              navigate(roomPath(room.roomId, null, rawAudio))
            } catch (err) {
              setError(t('home.couldNotCreate', { reason: (err as Error).message }))
            } finally {
              setBusy(false)
            }
          }}
        >
          {t('home.create')}
        </button>
      </section>
      )}

      <section className="card">
        <h2>{t('home.joinMeeting')}</h2>
        <form
          onSubmit={(e) => {
            e.preventDefault()
            setError(null)
            const id = extractRoomId(joinId)
            if (!id) {
              setError(t('home.enterRoom'))
              return
            }
            const n = validName()
            if (!n) return
            navigate(roomPath(id, null, rawAudio))
          }}
        >
          <input aria-label={t('home.roomIdOrLink')} value={joinId} onChange={(e) => setJoinId(e.target.value)} placeholder={t('home.roomIdOrLink')} />
          <button type="submit">{t('common.join')}</button>
        </form>
      </section>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </main>
  )
}
