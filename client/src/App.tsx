import { useTranslation } from 'react-i18next'
import { parseRoute } from './lib/url'
import { Home } from './pages/Home'
import { Recordings } from './pages/Recordings'
import { RoomPage } from './pages/RoomPage'
import { navigate, useLocation } from './router'

export function App() {
  const { t } = useTranslation()
  const { pathname, search } = useLocation()
  const route = parseRoute(pathname, search)
  switch (route.name) {
    case 'home':
      return <Home />
    case 'room':
      return <RoomPage key={route.roomId} roomId={route.roomId} initialName={route.userName} rawAudio={route.rawAudio} />
    case 'recordings':
      return <Recordings token={route.token} />
    default:
      return (
        <main className="page center">
          <h1>{t('notFound.title')}</h1>
          <p>{t('notFound.text', { path: route.path })}</p>
          <button type="button" onClick={() => navigate('/')}>
            {t('common.goHome')}
          </button>
        </main>
      )
  }
}
