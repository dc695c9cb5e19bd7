// The app's strings in one catalogue per language (i18next): English is the reference, German
// the second. The language is the browser's (navigator.languages), unless `?lang=` in the
// address or an earlier choice kept in localStorage says otherwise; unknown ones fall back
// to English. Initialised synchronously on import, so pure modules can call `t` at once.
import i18next from 'i18next'
import LanguageDetector from 'i18next-browser-languagedetector'
import { initReactI18next } from 'react-i18next'
import { de } from './de'
import { en } from './en'

export const LANGUAGES = { en: 'English', de: 'Deutsch' } as const
export type Language = keyof typeof LANGUAGES

const i18n = i18next.createInstance()
i18n
  .use(LanguageDetector)
  .use(initReactI18next)
  .init({
    resources: { en: { translation: en }, de: { translation: de } },
    supportedLngs: Object.keys(LANGUAGES),
    nonExplicitSupportedLngs: true, // de-AT, de-CH -> de
    fallbackLng: 'en',
    interpolation: { escapeValue: false }, // React escapes what it renders
    detection: {
      order: ['querystring', 'localStorage', 'navigator'],
      lookupQuerystring: 'lang',
      lookupLocalStorage: 'sfu.lang',
      caches: ['localStorage'],
    },
    initAsync: false,
    returnNull: false,
  })

/** The page's language for screen readers and hyphenation follows the chosen one. */
const setHtmlLang = (lng: string) => {
  if (typeof document !== 'undefined') document.documentElement.lang = lng.split('-')[0]
}
setHtmlLang(i18n.resolvedLanguage ?? 'en')
i18n.on('languageChanged', (lng) => setHtmlLang(i18n.resolvedLanguage ?? lng))

export const t = i18n.t.bind(i18n)
export default i18n

// Keys are checked by the compiler against the English catalogue.
declare module 'i18next' {
  interface CustomTypeOptions {
    resources: { translation: typeof en }
  }
}
