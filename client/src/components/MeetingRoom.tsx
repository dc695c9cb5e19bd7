import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { useRecorder, type RecordingSource } from '../hooks/useRecorder'
import { useRecordingState } from '../hooks/useRecordingState'
import { useMediaHealth } from '../hooks/useMediaHealth'
import { useWebRTC } from '../hooks/useWebRTC'
import { controlsFor } from '../lib/access'
import { recordingsPath, roomUrl } from '../lib/url'
import type { DeviceChoice } from '../services/media'
import type { RoomAccess } from '../services/protocol'
import { shortcutFor, shortcutList } from '../lib/shortcuts'
import { raisedHands } from '../state/room'
import { arrange, gridColumns, paginate, tilesPerPage, type Layout } from '../state/layout'
import { AccessGate } from './AccessGate'
import { ChatPanel } from './ChatPanel'
import { DeviceSelect } from './DeviceSelect'
import { EmojiPicker } from './EmojiPicker'
import { LobbyPanel } from './LobbyPanel'
import { ParticipantsPanel } from './ParticipantsPanel'
import { ScreenShareWarning } from './ScreenShareWarning'
import { ToolbarButton } from './ToolbarButton'
import {
  CameraIcon,
  ChatIcon,
  GearIcon,
  HandIcon,
  KeyboardIcon,
  LayoutIcon,
  LeaveIcon,
  LocalRecordIcon,
  MicIcon,
  MoreIcon,
  PeopleIcon,
  RecordIcon,
  ScreenIcon,
  SmileIcon,
} from './Icons'
import { Toasts } from './Toast'
import { AUTOPLAY_BLOCKED_EVENT, enableRemoteSound, VideoTile } from './VideoTile'
import { audioContext } from '../services/media'
import { lowBandwidth, setLowBandwidth } from '../services/tileViews'

export interface MeetingRoomProps {
  roomId: string
  userId: string
  userName: string
  rawAudio: boolean
  devices: DeviceChoice
  startAudio: boolean
  startVideo: boolean
  /** A join token (the name and identity come from it). */
  token?: string | null
  password?: string | null
  /** For a join that creates the room: its access policy. */
  createAccess?: RoomAccess
  /** The user left (Leave, or declined a recorded meeting): the "You left" page. */
  onLeft: () => void
  /** To the start page (from a page that ends the visit: refused, removed, ended). */
  onHome?: () => void
}

type Panel = 'chat' | 'participants' | 'settings' | null
/** The phone layout's breakpoint (styles.css). */
const NARROW = '(max-width: 700px)'


export function MeetingRoom(props: MeetingRoomProps) {
  const { t } = useTranslation()
  const room = useWebRTC({
    roomId: props.roomId,
    userId: props.userId,
    userName: props.userName,
    rawAudio: props.rawAudio,
    devices: props.devices,
    startAudio: props.startAudio,
    startVideo: props.startVideo,
    token: props.token,
    password: props.password,
    createAccess: props.createAccess,
  })
  const { state, dispatch } = room
  const stateRef = useRef(state)
  stateRef.current = state
  const serverRec = useRecordingState({
    toast: useCallback((message, kind) => dispatch({ type: 'toast', kind, message }), [dispatch]),
    nameOf: useCallback((id: string) => stateRef.current.participants[id]?.userName ?? null, []),
  })
  const isSfu = state.mode === 'sfu'
  const controls = controlsFor(state.grants, state.role, state.mode)
  const selfName = room.selfName ?? props.userName
  const [panel, setPanelState] = useState<Panel>(null)
  const [emojiOpen, setEmojiOpen] = useState(false)
  const [helpOpen, setHelpOpen] = useState(false)
  const [copied, setCopied] = useState(false)
  const [chosen, setChosen] = useState<DeviceChoice>(props.devices)
  const [soundBlocked, setSoundBlocked] = useState(false)
  // Layout (#18): grid or speaker view, a pinned tile, whole pictures (letterboxed) or cropped.
  const [layout, setLayout] = useState<Layout>('grid')
  const [pinned, setPinned] = useState<string | null>(null)
  const [crop, setCrop] = useState(false)
  const [low, setLow] = useState(lowBandwidth)
  const [lastSpeaker, setLastSpeaker] = useState<string | null>(null)
  // Past what fits (state/layout.ts) the grid pages; the phone's narrow layout fits fewer.
  const [gridPage, setGridPage] = useState(0)
  const [narrow, setNarrow] = useState(() => window.matchMedia?.(NARROW).matches ?? false)
  useEffect(() => {
    const query = window.matchMedia?.(NARROW)
    if (!query) return
    const change = () => setNarrow(query.matches)
    query.addEventListener('change', change)
    return () => query.removeEventListener('change', change)
  }, [])
  const onSpeaking = useCallback((id: string, speaking: boolean) => {
    if (speaking) setLastSpeaker(id)
  }, [])
  useEffect(() => {
    const onBlocked = () => setSoundBlocked(true)
    window.addEventListener(AUTOPLAY_BLOCKED_EVENT, onBlocked)
    return () => window.removeEventListener(AUTOPLAY_BLOCKED_EVENT, onBlocked)
  }, [])

  const setPanel = (p: Panel) => {
    setPanelState(p)
    dispatch({ type: 'chat-open', open: p === 'chat' })
  }
  // Focus (#18): a panel, menu or dialog closed gives the focus back to what opened it.
  const panelButtons = { chat: useRef<HTMLButtonElement>(null), participants: useRef<HTMLButtonElement>(null), settings: useRef<HTMLButtonElement>(null) }
  const emojiButton = useRef<HTMLButtonElement>(null)
  const moreButton = useRef<HTMLButtonElement>(null)
  const leaveButton = useRef<HTMLButtonElement>(null)
  const helpOpener = useRef<HTMLElement | null>(null)
  const closePanel = () => {
    const opened = panel
    setPanel(null)
    if (opened) panelButtons[opened].current?.focus()
  }
  const togglePanel = (p: Exclude<Panel, null>) => (panel === p ? closePanel() : setPanel(p))
  const openHelp = () => {
    helpOpener.current = document.activeElement instanceof HTMLElement ? document.activeElement : null
    setHelpOpen(true)
  }
  const closeHelp = () => {
    setHelpOpen(false)
    helpOpener.current?.focus()
    helpOpener.current = null
  }
  const closeEmoji = () => {
    setEmojiOpen(false)
    emojiButton.current?.focus()
  }

  const participants = state.order.map((id) => state.participants[id]).filter(Boolean)
  // Raised hands, first up first: each one's place in the line.
  const hands = raisedHands(state)
  const handPlace = new Map(hands.map(([id], i) => [id, i + 1]))
  const selfHandUp = !!state.selfId && handPlace.has(state.selfId)
  if (participants.length === 0) {
    // Before the join answer: show ourselves.
    participants.push({ userId: props.userId, userName: selfName, media: room.localMedia, isLocal: true, role: 'participant' })
  }

  const remotes = useMemo(
    () => state.order.map((id) => state.participants[id]).filter((p) => p && !p.isLocal),
    [state.order, state.participants],
  )
  const health = useMediaHealth({
    mode: state.mode,
    joinedAt: room.joinedAt,
    connection: room.connection,
    turnConfigured: room.turnConfigured,
    publishing: !!room.localStream?.getTracks().length || !!room.screenStream,
    remotes,
    peerStates: room.peerStates,
    recovering: room.recovering,
    unsupported: room.unsupported,
    remoteStats: room.remoteStats,
  })

  const localView = useMemo(() => {
    if (!room.screenStream) return room.localStream
    return new MediaStream([...room.screenStream.getVideoTracks(), ...(room.localStream?.getAudioTracks() ?? [])])
  }, [room.localStream, room.screenStream])

  const getSources = useCallback((): RecordingSource[] => {
    const videos = Array.from(document.querySelectorAll<HTMLVideoElement>('video[data-user-id]'))
    return videos.map((v) => ({
      label: v.getAttribute('aria-label') ?? '',
      video: v,
      stream: (v.srcObject as MediaStream | null) ?? null,
      showsVideo: !v.classList.contains('hidden-video'),
    }))
  }, [])
  const recorder = useRecorder(getSources)
  const [confirmLeave, setConfirmLeave] = useState(false)
  // On a phone the toolbar keeps the microphone, camera, chat and Leave; the rest is in More.
  const [moreOpen, setMoreOpen] = useState(false)
  const more = `more-group${moreOpen ? ' open' : ''}`
  // The others are told while we record locally (and again after a rejoin).
  const announced = useRef(false)
  const { announceLocalRecording } = room
  useEffect(() => {
    if (room.joinStatus !== 'joined' || (!recorder.recording && !announced.current)) return
    announced.current = recorder.recording
    void announceLocalRecording(recorder.recording)
  }, [recorder.recording, room.joinStatus, announceLocalRecording])
  // Closing the tab while recording locally would lose the recording: the browser asks first.
  useEffect(() => {
    if (!recorder.recording) return
    const warn = (e: BeforeUnloadEvent) => {
      e.preventDefault()
      e.returnValue = ''
    }
    window.addEventListener('beforeunload', warn)
    return () => window.removeEventListener('beforeunload', warn)
  }, [recorder.recording])

  const copyLink = async () => {
    const url = roomUrl(location.origin, props.roomId)
    try {
      await navigator.clipboard.writeText(url)
    } catch {
      window.prompt(t('room.copyPrompt'), url)
    }
    setCopied(true)
    setTimeout(() => setCopied(false), 2000)
  }

  const leave = async (save = false) => {
    if (recorder.recording) {
      const file = await recorder.stop()
      if (save && file) {
        const a = document.createElement('a')
        a.href = file.url
        a.download = file.name
        document.body.appendChild(a)
        a.click()
        a.remove()
      }
    }
    await room.leave()
    props.onLeft()
  }
  // Leaving while recording locally asks first: the recording would be lost.
  const askLeave = () => (recorder.recording ? setConfirmLeave(true) : void leave())

  const byId = new Map(participants.map((p) => [p.userId, p]))
  const arrangement = arrange({
    layout,
    ids: participants.map((p) => p.userId),
    selfId: state.selfId ?? props.userId,
    pinned,
    screens: participants.filter((p) => (p.isLocal ? room.localMedia.screen : p.media.screen)).map((p) => p.userId),
    lastSpeaker,
  })
  // The grid view past what fits shows a page of tiles; the others stay mounted but hidden
  // (their sound keeps playing). A stage layout shows everyone: its strip scrolls.
  const paged = arrangement.stage ? null : paginate(arrangement.others, state.selfId ?? props.userId, tilesPerPage(narrow), gridPage)
  const onPage = paged && paged.pages > 1 ? new Set(paged.ids) : null
  const shownCount = onPage ? onPage.size : participants.length
  const cols = gridColumns(shownCount)
  const rows = Math.ceil(shownCount / cols)
  const dismissToast = useCallback((id: number) => dispatch({ type: 'toast-dismiss', id }), [dispatch])

  // The tab says where we are, and how many chat messages wait unread.
  useEffect(() => {
    const before = document.title
    const where = state.roomName ?? t('common.roomId', { id: props.roomId })
    document.title = state.unread > 0 ? t('room.tabTitleUnread', { count: state.unread, where }) : t('room.tabTitle', { where })
    return () => {
      document.title = before
    }
  }, [props.roomId, state.roomName, state.unread, t])

  // Keyboard shortcuts (lib/shortcuts.ts); Space held while muted talks until released.
  const keys = useRef({ room, selfHandUp, pushing: false, escape: (): boolean => false, help: () => {} })
  keys.current.room = room
  keys.current.selfHandUp = selfHandUp
  // Escape closes what is on top, one thing per press, and gives the focus back.
  keys.current.escape = () => {
    if (confirmLeave) {
      setConfirmLeave(false)
      leaveButton.current?.focus()
    } else if (helpOpen) closeHelp()
    else if (emojiOpen) closeEmoji()
    else if (moreOpen) {
      setMoreOpen(false)
      moreButton.current?.focus()
    } else if (panel) closePanel()
    else return false
    return true
  }
  keys.current.help = () => (helpOpen ? closeHelp() : openHelp())
  useEffect(() => {
    const down = (e: KeyboardEvent) => {
      const action = shortcutFor({ key: e.key, ctrlKey: e.ctrlKey, metaKey: e.metaKey, altKey: e.altKey, repeat: e.repeat, target: e.target as HTMLElement | null })
      const k = keys.current
      if (!action) {
        if (e.key === 'Escape' && k.escape()) e.preventDefault()
        return
      }
      if (k.room.joinStatus !== 'joined') return
      if (action === 'push-to-talk') {
        if (k.room.localMedia.audio || k.pushing) return
        k.pushing = true
        e.preventDefault() // not a click on the focused button
        void k.room.toggleMic()
        return
      }
      e.preventDefault()
      if (action === 'toggle-mic') void k.room.toggleMic()
      else if (action === 'toggle-camera') void k.room.toggleCamera()
      else if (action === 'raise-hand') void k.room.raiseHand(!k.selfHandUp)
      else if (action === 'help') k.help()
    }
    const up = (e: KeyboardEvent) => {
      const k = keys.current
      if (e.key !== ' ' || !k.pushing) return
      k.pushing = false
      e.preventDefault()
      if (k.room.localMedia.audio) void k.room.toggleMic()
    }
    window.addEventListener('keydown', down)
    window.addEventListener('keyup', up)
    return () => {
      window.removeEventListener('keydown', down)
      window.removeEventListener('keyup', up)
    }
  }, [])

  const gated = room.gate && ['password', 'lobby', 'consent', 'ended'].includes(room.joinStatus)
  if (room.gate && (gated || (room.gate.kind === 'password' && room.joinStatus === 'joining'))) {
    return (
      <>
        <AccessGate
          gate={room.gate}
          roomId={props.roomId}
          busy={room.joinStatus === 'joining'}
          onPassword={room.submitPassword}
          onConsent={(choice) => {
            room.chooseConsent(choice)
            if (choice === 'leave') props.onLeft()
          }}
          onLeave={() => void leave()}
          onHome={props.onHome ?? props.onLeft}
          onRetry={() => window.location.reload()}
        />
        <Toasts toasts={state.toasts} onDismiss={dismissToast} />
      </>
    )
  }

  return (
    <main className="room" data-testid="room" data-join-status={room.joinStatus} data-mode={state.mode ?? ''}>
      <header className="room-head">
        <div className="room-title">
          <h1 className="room-id" data-testid="room-name">{state.roomName ?? t('common.roomId', { id: props.roomId })}</h1>
          {state.roomName && <span className="room-id-secondary">{props.roomId}</span>}
          <span className="badge count-badge" data-testid="participant-count" title={t('room.peopleTitle')} role="img" aria-label={t('room.inMeeting', { count: participants.length })}>
            👥 {participants.length}
          </span>
          {state.mode && (
            <span className={`badge mode-badge mode-${state.mode}`} data-testid="mode-badge">
              {state.mode.toUpperCase()}
            </span>
          )}
          <button type="button" className="small-btn shortcuts-btn" onClick={openHelp} data-testid="shortcuts-button" title={t('room.shortcutsTitle')}>
            <KeyboardIcon /> {t('room.shortcuts')}
          </button>
          <button type="button" className="small-btn" onClick={copyLink} data-testid="copy-link">
            {copied ? t('room.linkCopied') : t('room.copyLink')}
          </button>
          {state.role === 'moderator' && (
            <span className="badge role-badge" data-testid="self-role">
              {t('common.moderator')}
            </span>
          )}
          {state.locked && (
            <span className="badge locked-badge" role="status" data-testid="locked-badge" title={t('room.lockedTitle')}>
              {t('room.locked')}
            </span>
          )}
          {serverRec.recording && (
            <span
              className={`badge rec-indicator${serverRec.stopping ? ' saving' : ''}`}
              role="status"
              data-testid="rec-indicator"
              data-state={serverRec.stopping ? 'saving' : 'recording'}
              title={serverRec.stopping ? t('room.recSavingTitle') : t('room.recTitle')}
            >
              {serverRec.stopping ? t('room.saving') : t('room.rec')}
            </span>
          )}
          {serverRec.token && (
            <a className="small-btn recordings-link" href={recordingsPath(serverRec.token)} target="_blank" rel="noopener" data-testid="recordings-link">
              {t('room.recordings')}
            </a>
          )}
        </div>
        <div className={`conn conn-${room.connection}`} data-testid="connection-status">
          {room.joinStatus === 'failed'
            ? t('meeting.couldNotJoin', { reason: room.joinError ?? '' })
            : room.connection === 'connected'
              ? room.joinStatus === 'joined'
                ? t('room.connected')
                : t('room.joining')
              : room.connection === 'reconnecting'
                ? t('room.reconnecting')
                : t('room.connecting')}
        </div>
      </header>

      {helpOpen && (
        <div className="notice shortcuts-help" role="dialog" aria-labelledby="shortcuts-title" data-testid="shortcuts-help">
          <h2 id="shortcuts-title">{t('room.shortcutsHeading')}</h2>
          <dl>
            {shortcutList().map((s) => (
              <div key={s.keys}>
                <dt>{s.keys}</dt>
                <dd>{s.what}</dd>
              </div>
            ))}
          </dl>
          <button type="button" className="small-btn" onClick={closeHelp} autoFocus data-testid="shortcuts-close">
            {t('common.close')}
          </button>
        </div>
      )}
      {room.connection === 'reconnecting' && room.joinStatus !== 'left' && (
        <div className="notice notice-error connection-banner" role="alert" data-testid="connection-banner">
          {t('room.connectionLost')}
        </div>
      )}
      {health.banner && room.joinStatus !== 'left' && (
        <div className="notice notice-error media-banner" role="alert" data-testid="media-banner" data-cause={health.banner.cause}>
          {health.banner.message}
        </div>
      )}
      {room.mediaProblem && (
        <div className="notice" role="status" data-testid="media-problem">
          {room.mediaProblem}
        </div>
      )}
      {room.notice && (
        <div className="notice notice-error" role="alert" data-testid="sfu-notice">
          {room.notice}
        </div>
      )}
      {soundBlocked && (
        <div className="notice" role="status">
          {t('room.soundBlocked')}{' '}
          <button
            type="button"
            data-testid="enable-sound"
            onClick={() => {
              audioContext()
              void enableRemoteSound()
              setSoundBlocked(false)
            }}
          >
            {t('room.enableSound')}
          </button>
        </div>
      )}
      {room.screenWarning && (
        <ScreenShareWarning onDismiss={room.dismissScreenWarning} onStop={() => void room.stopScreenShare()} />
      )}

      {controls.moderate && (
        <LobbyPanel requests={state.lobby} onAdmit={(id) => void room.moderation.admit(id)} onDeny={(id) => void room.moderation.deny(id)} />
      )}

      <div className="room-body">
        <section
          className={`grid${arrangement.stage ? ' staged' : ''}`}
          data-testid="tiles"
          data-layout={layout}
          data-stage={arrangement.stage ?? ''}
          data-stage-reason={arrangement.reason ?? ''}
          style={{ ['--cols' as string]: String(cols), ['--rows' as string]: String(rows) }}
          aria-label={t('room.videos')}
        >
          {(arrangement.stage ? [arrangement.stage, ...arrangement.others] : arrangement.others).map((id) => {
            const p = byId.get(id)
            if (!p) return null
            const staged = id === arrangement.stage
            return (
              <VideoTile
                key={p.userId}
                offPage={onPage !== null && !onPage.has(id)}
                userId={p.userId}
                name={p.userName}
                isLocal={p.isLocal}
                stream={p.isLocal ? localView : (room.remoteStreams[p.userId] ?? null)}
                media={p.isLocal ? room.localMedia : p.media}
                mirrored={p.isLocal && !room.screenStream}
                reactions={state.reactions.filter((r) => r.userId === p.userId)}
                health={p.isLocal ? undefined : health.tiles[p.userId]}
                localStatus={p.isLocal && isSfu && room.recovering.publish ? t('tile.reconnecting') : null}
                hand={handPlace.get(p.userId) ?? null}
                place={arrangement.stage ? (staged ? 'stage' : 'strip') : 'grid'}
                crop={crop}
                pinned={pinned === p.userId}
                onPin={() => setPinned((now) => (now === p.userId ? null : p.userId))}
                outputId={chosen.audioOutputId}
                recordingLocally={p.isLocal ? recorder.recording : p.localRecording === true}
                onSpeaking={onSpeaking}
              />
            )
          })}
        </section>
        {panel === 'chat' && (
          <ChatPanel messages={state.chat} selfId={state.selfId} onSend={room.sendChat} onClose={closePanel} canSend={controls.chatInput} />
        )}
        {panel === 'participants' && (
          <ParticipantsPanel
            participants={[...participants].sort((a, b) => (handPlace.get(a.userId) ?? 1e9) - (handPlace.get(b.userId) ?? 1e9))}
            hands={handPlace}
            peerStates={room.peerStates}
            onClose={closePanel}
            canModerate={controls.moderate}
            locked={state.locked}
            actions={room.moderation}
          />
        )}
        {panel === 'settings' && (
          <aside className="panel" aria-label={t('room.settings')}>
            <header className="panel-head">
              <h2>{t('room.devices')}</h2>
              <button type="button" className="icon-btn" onClick={closePanel} aria-label={t('room.closeSettings')} autoFocus>
                ✕
              </button>
            </header>
            <label className="check">
              <input type="checkbox" checked={crop} onChange={(e) => setCrop(e.target.checked)} data-testid="crop-toggle" />
              {t('room.crop')}
            </label>
            {isSfu && (
              <label className="check">
                <input
                  type="checkbox"
                  checked={low}
                  onChange={(e) => {
                    setLow(e.target.checked)
                    setLowBandwidth(e.target.checked)
                  }}
                  data-testid="low-bandwidth-toggle"
                />
                {t('room.lowBandwidth')}
              </label>
            )}
            <DeviceSelect
              audioDeviceId={chosen.audioDeviceId}
              videoDeviceId={chosen.videoDeviceId}
              outputDeviceId={chosen.audioOutputId}
              refreshKey={room.localStream}
              onChange={(kind, id) => {
                if (!id) return
                if (kind === 'output') {
                  setChosen((d) => ({ ...d, audioOutputId: id }))
                  return
                }
                setChosen((d) => (kind === 'audio' ? { ...d, audioDeviceId: id } : { ...d, videoDeviceId: id }))
                void room.switchDevice(kind, id)
              }}
            />
          </aside>
        )}
      </div>

      {paged && paged.pages > 1 && (
        <nav className="grid-pages" aria-label={t('room.pages')} data-testid="grid-pages">
          <button type="button" className="small-btn" onClick={() => setGridPage(paged.page - 1)} disabled={paged.page === 0} aria-label={t('room.previousPage')} data-testid="grid-prev">
            ‹
          </button>
          <span data-testid="grid-page" aria-live="polite">
            {paged.page + 1}/{paged.pages}
          </span>
          <button type="button" className="small-btn" onClick={() => setGridPage(paged.page + 1)} disabled={paged.page === paged.pages - 1} aria-label={t('room.nextPage')} data-testid="grid-next">
            ›
          </button>
        </nav>
      )}
      <div className="controls" role="toolbar" aria-label={t('toolbar.label')}>
        <ToolbarButton
          label={room.localMedia.audio ? t('toolbar.mute') : t('toolbar.unmute')}
          icon={<MicIcon off={!room.localMedia.audio} size={20} />}
          className={room.localMedia.audio ? '' : 'off'}
          onClick={() => void room.toggleMic()}
          pressed={!room.localMedia.audio}
          disabled={!controls.mic}
          hint={controls.mic ? undefined : t('toolbar.micNotAllowed')}
          testId="toggle-mic"
        />
        <ToolbarButton
          label={room.localMedia.video ? t('toolbar.stopVideo') : t('toolbar.startVideo')}
          icon={<CameraIcon off={!room.localMedia.video} size={20} />}
          className={room.localMedia.video ? '' : 'off'}
          onClick={() => void room.toggleCamera()}
          pressed={!room.localMedia.video}
          disabled={!controls.camera}
          hint={controls.camera ? undefined : t('toolbar.cameraNotAllowed')}
          testId="toggle-camera"
        />
        <div className={more} id="more-controls-1">
          <ToolbarButton
            label={room.localMedia.screen ? t('toolbar.stopSharing') : t('toolbar.shareScreen')}
            icon={<ScreenIcon size={20} />}
            className={room.localMedia.screen ? 'active' : ''}
            onClick={() => void (room.localMedia.screen ? room.stopScreenShare() : room.startScreenShare())}
            disabled={!controls.screen && !room.localMedia.screen}
            hint={controls.screen ? undefined : t('toolbar.screenNotAllowed')}
            testId="toggle-screen"
          />
          <ToolbarButton
            label={selfHandUp ? t('toolbar.lowerHand') : t('toolbar.raiseHand')}
            icon={<HandIcon />}
            className={selfHandUp ? 'active' : ''}
            onClick={() => void room.raiseHand(!selfHandUp)}
            pressed={selfHandUp}
            testId="raise-hand"
          />
          <ToolbarButton
            label={layout === 'speaker' ? t('toolbar.gridView') : t('toolbar.speakerView')}
            icon={<LayoutIcon speaker={layout !== 'speaker'} />}
            className={layout === 'speaker' ? 'active' : ''}
            onClick={() => setLayout((l) => (l === 'grid' ? 'speaker' : 'grid'))}
            pressed={layout === 'speaker'}
            testId="layout-toggle"
          />
          <div className="emoji-wrap">
            <ToolbarButton
              ref={emojiButton}
              label={t('toolbar.react')}
              icon={<SmileIcon />}
              className={emojiOpen ? 'active' : ''}
              onClick={() => (emojiOpen ? closeEmoji() : setEmojiOpen(true))}
              expanded={emojiOpen}
              testId="emoji-button"
            />
            {emojiOpen && <EmojiPicker onPick={(e) => void room.sendEmoji(e)} onClose={closeEmoji} />}
          </div>
        </div>
        <ToolbarButton
          ref={panelButtons.chat}
          label={state.unread > 0 ? t('toolbar.chatUnread', { count: state.unread }) : t('toolbar.chat')}
          icon={<ChatIcon />}
          className={panel === 'chat' ? 'active' : ''}
          onClick={() => togglePanel('chat')}
          expanded={panel === 'chat'}
          testId="chat-button"
          badge={
            state.unread > 0 && (
              <span className="unread" data-testid="unread-count" aria-hidden="true">
                {state.unread}
              </span>
            )
          }
        />
        <div className={more} id="more-controls-2">
          <ToolbarButton
            ref={panelButtons.participants}
            label={t('toolbar.people', { count: participants.length })}
            icon={<PeopleIcon />}
            className={panel === 'participants' ? 'active' : ''}
            onClick={() => togglePanel('participants')}
            expanded={panel === 'participants'}
            testId="participants-button"
          />
          <ToolbarButton
            ref={panelButtons.settings}
            label={t('toolbar.devices')}
            icon={<GearIcon />}
            className={panel === 'settings' ? 'active' : ''}
            onClick={() => togglePanel('settings')}
            expanded={panel === 'settings'}
            testId="settings-button"
          />
          {controls.record && (
            <ToolbarButton
              label={serverRec.stopping ? t('toolbar.saving') : serverRec.recording ? t('toolbar.stopRecording') : t('toolbar.record')}
              icon={<RecordIcon stop={serverRec.recording} />}
              className={serverRec.recording ? 'recording' : ''}
              disabled={serverRec.pending}
              onClick={() => void (serverRec.recording ? serverRec.stop() : serverRec.start())}
              pressed={serverRec.recording}
              testId="server-record-button"
            />
          )}
          <ToolbarButton
            label={recorder.recording ? t('toolbar.stopLocalRecording') : t('toolbar.recordLocally')}
            icon={<LocalRecordIcon stop={recorder.recording} />}
            className={recorder.recording ? 'recording' : ''}
            onClick={() => (recorder.recording ? void recorder.stop() : recorder.start())}
            testId="record-button"
          />
          {recorder.download && !recorder.recording && (
            <a className="download" href={recorder.download.url} download={recorder.download.name} data-testid="recording-download">
              {t('toolbar.downloadRecording')}
            </a>
          )}
        </div>
        <ToolbarButton
          ref={moreButton}
          label={t('toolbar.more')}
          icon={<MoreIcon />}
          className={`more-btn${moreOpen ? ' active' : ''}`}
          onClick={() => setMoreOpen((o) => !o)}
          expanded={moreOpen}
          controls="more-controls-1 more-controls-2"
          testId="more-button"
        />
        <ToolbarButton ref={leaveButton} label={t('toolbar.leave')} icon={<LeaveIcon />} className="leave" onClick={askLeave} testId="leave-button" />
      </div>
      {confirmLeave && (
        <div className="notice leave-confirm" role="alertdialog" aria-label={t('room.leaveConfirm.label')} data-testid="leave-confirm">
          <strong>{t('room.leaveConfirm.recording')}</strong> {t('room.leaveConfirm.question')}
          <div className="consent-actions">
            <button
              type="button"
              autoFocus
              onClick={() => {
                setConfirmLeave(false)
                void leave(true)
              }}
              data-testid="leave-save"
            >
              {t('room.leaveConfirm.save')}
            </button>
            <button
              type="button"
              onClick={() => {
                setConfirmLeave(false)
                void leave()
              }}
              data-testid="leave-discard"
            >
              {t('room.leaveConfirm.discard')}
            </button>
            <button
              type="button"
              onClick={() => {
                setConfirmLeave(false)
                leaveButton.current?.focus()
              }}
              data-testid="leave-stay"
            >
              {t('room.leaveConfirm.stay')}
            </button>
          </div>
        </div>
      )}
      {recorder.error && (
        <div className="notice notice-error" role="alert">
          {recorder.error}
        </div>
      )}
      <Toasts toasts={state.toasts} onDismiss={dismissToast} />
    </main>
  )
}
