import { useEffect, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { PreJoin } from '../components/PreJoin'
import { MeetingRoom } from '../components/MeetingRoom'
import { adoptUrlToken, EMBED_READY_MESSAGE, embedTokenOf, roomPassword, saveJoinToken, tokenHints } from '../lib/access'
import { getUserId, rememberName, rememberedName } from '../lib/identity'
import { cleanName } from '../lib/url'
import type { DeviceChoice } from '../services/media'
import { navigate } from '../router'

/** /room/<id>: the pre-join screen (name, camera preview, microphone level, devices), then the
 * meeting. A ``?name=`` or a join token skips it (links made for one person, embedding). */
export function RoomPage({ roomId, initialName, rawAudio }: { roomId: string; initialName: string | null; rawAudio: boolean }) {
  const { t } = useTranslation()
  // A token in the address is taken out of it at once (lib/access.ts).
  const [token, setToken] = useState<string | null>(() => adoptUrlToken(roomId))
  const [name, setName] = useState<string | null>(() => (initialName ? cleanName(initialName) : null))
  const [draft, setDraft] = useState(rememberedName)
  const [devices, setDevices] = useState<DeviceChoice>({})
  const [startAudio, setStartAudio] = useState(true)
  const [startVideo, setStartVideo] = useState(true)
  const [error, setError] = useState<string | null>(null)
  const [userId] = useState(() => getUserId())
  // After Leave: the "You left" page; Rejoin mounts a fresh meeting (a new visit).
  const [left, setLeft] = useState(false)
  const [visit, setVisit] = useState(0)

  // Inside an embedding page's iframe: say we are ready; the page may answer with a token.
  useEffect(() => {
    if (window.parent === window) return
    const onMessage = (e: MessageEvent) => {
      const embedded = embedTokenOf(e.data, e.source === window.parent)
      if (!embedded) return
      saveJoinToken(roomId, embedded)
      setToken(embedded)
    }
    window.addEventListener('message', onMessage)
    window.parent.postMessage({ type: EMBED_READY_MESSAGE, roomId }, '*')
    return () => window.removeEventListener('message', onMessage)
  }, [roomId])

  if (left) {
    return (
      <main className="page center" data-testid="left-page">
        <h1>{t('roomPage.left')}</h1>
        <p className="muted">{t('common.roomId', { id: roomId })}</p>
        <div className="consent-actions">
          <button
            type="button"
            onClick={() => {
              setLeft(false)
              setVisit((v) => v + 1)
            }}
            data-testid="rejoin-button"
          >
            {t('roomPage.rejoin')}
          </button>
          <button type="button" onClick={() => navigate('/')} data-testid="home-button">
            {t('common.goHome')}
          </button>
        </div>
      </main>
    )
  }
  if (token || name) {
    const password = roomPassword(roomId)
    return (
      <MeetingRoom
        key={`${token ?? ''}#${visit}`}
        roomId={roomId}
        userId={userId}
        userName={token ? (tokenHints(token)?.name ?? name ?? t('roomPage.guest')) : name!}
        token={token}
        password={password}
        createAccess={password ? 'password' : undefined}
        rawAudio={rawAudio}
        devices={devices}
        startAudio={startAudio}
        startVideo={startVideo}
        onLeft={() => setLeft(true)}
        onHome={() => navigate('/')}
      />
    )
  }
  return (
    <main className="page center">
      <h1>{t('roomPage.joinRoom', { id: roomId })}</h1>
      <form
        className="card join-form"
        data-testid="prejoin-form"
        onSubmit={(e) => {
          e.preventDefault()
          const n = cleanName(draft)
          if (!n) {
            setError(t('common.nameRequired'))
            return
          }
          rememberName(n)
          setName(n)
        }}
      >
        <label className="field">
          {t('common.yourName')}
          <input aria-label={t('common.yourName')} autoFocus value={draft} maxLength={64} onChange={(e) => setDraft(e.target.value)} />
        </label>
        <PreJoin
          rawAudio={rawAudio}
          devices={devices}
          onDevices={setDevices}
          startAudio={startAudio}
          startVideo={startVideo}
          onStartAudio={setStartAudio}
          onStartVideo={setStartVideo}
        />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" data-testid="prejoin-join">
          {t('common.join')}
        </button>
      </form>
    </main>
  )
}
