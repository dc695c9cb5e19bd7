import { createRoot } from 'react-dom/client'
import './i18n' // first: the language is chosen before anything renders
import { App } from './App'
import './styles.css'

createRoot(document.getElementById('root')!).render(<App />)
