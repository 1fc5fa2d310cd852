/**
 * Small pieces shared by the pages: the html tag, a time with its UTC title, a state badge, an
 * error line, and a hook that loads an API answer.
 */
import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiFailure } from './api.js';
import { local, utcTitle } from './format.js';

export { html };

/** A time in the browser's zone with its UTC in the hover title. */
export function Time({ at }: { at: string | null | undefined }) {
  return html`<time datetime=${at ?? ''} title=${utcTitle(at)}>${local(at)}</time>`;
}

/** A node state as a coloured badge (with the word, not only the colour). */
export function StateBadge({ state, conflict }: { state: string; conflict?: boolean }) {
  return html`<span class=${`badge st-${state}${conflict ? ' st-conflict' : ''}`}>${conflict ? 'CONFLICT' : state.toUpperCase()}</span>`;
}

/** The message of an error for the page. */
export function errorText(e: unknown): string {
  if (e instanceof ApiFailure) return `${e.message}${e.body?.field ? ` (${e.body.field})` : ''}`;
  if (e instanceof TypeError) return 'the manager cannot be reached';
  return String((e as Error)?.message ?? e);
}

/** An error line, announced to screen readers. */
export function ErrorLine({ error }: { error: unknown }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${errorText(error)}</p>`;
}

/**
 * Loads `load()` when `deps` change, and again every `everyMs` when given.
 * @returns the data (null until loaded), the error, and a reload function
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs?: number) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const reload = useCallback(async () => {
    try {
      setData(await load());
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, deps);
  useEffect(() => {
    void reload();
    if (!everyMs) return;
    const t = window.setInterval(() => void reload(), everyMs);
    return () => window.clearInterval(t);
  }, [reload, everyMs]);
  return { data, error, reload };
}
