/**
 * A board's screen (docs/dashboard.md "Screen", docs/files.md "Screen"): the PNG of GET
 * /api/v1/nodes/:id/screen, taken when the page opens and again on "Refresh"; a board without a
 * display says so (503 `no_display`). Every capture is in the history. Shown at
 * `#/node/<id>/screen`, linked from the board page.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiFailure } from '../api.js';
import { ErrorLine, html } from '../ui.js';

/** What a capture gave: an object URL of the PNG, or why there is none. */
type Shot = { url: string; at: Date; bytes: number } | { none: string } | null;

/** The screen page of board `id`. */
export function Screen({ id }: { id: string }) {
  const [shot, setShot] = useState<Shot>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [n, setN] = useState(0);
  useEffect(() => {
    let url = '';
    let stop = false;
    setBusy(true);
    fetch(`api/v1/nodes/${encodeURIComponent(id)}/screen`, { credentials: 'same-origin' })
      .then(async (res) => {
        if (stop) return;
        if (res.ok) {
          const blob = await res.blob();
          url = URL.createObjectURL(blob);
          setShot({ url, at: new Date(), bytes: blob.size });
          setError(null);
          return;
        }
        let body: { error?: string; message?: string } | null = null;
        try {
          body = await res.json();
        } catch {
          body = null;
        }
        if (body?.error === 'no_display') setShot({ none: 'This board has no display to capture.' });
        else setError(new ApiFailure(res.status, (body as never) ?? null));
      })
      .catch((e) => !stop && setError(e))
      .finally(() => !stop && setBusy(false));
    return () => {
      stop = true;
      if (url) URL.revokeObjectURL(url);
    };
  }, [id, n]);
  return html`<section aria-labelledby="screen-h">
    <h1 id="screen-h">Screen of <a href=${`#/node/${id}`}>${id}</a></h1>
    <p class="toolbar"><button type="button" id="screen-refresh" onClick=${() => setN(n + 1)} disabled=${busy}>${busy ? 'Capturing…' : 'Refresh'}</button>
      ${
        shot && 'url' in shot
          ? html`<span role="status">taken <time datetime=${shot.at.toISOString()} title=${`${shot.at
              .toISOString()
              .replace('T', ' ')
              .replace(
                /\.\d+Z$/,
                '',
              )} UTC`}>${shot.at.toLocaleTimeString(undefined, { hour12: false })}</time>, ${(shot.bytes / 1024).toFixed(1)} KiB</span>`
          : ''
      }</p>
    <${ErrorLine} error=${error} />
    ${shot && 'none' in shot ? html`<p class="note" role="status" id="no-display">${shot.none}</p>` : ''}
    ${shot && 'url' in shot ? html`<img class="screen" id="screen-img" src=${shot.url} alt=${`the screen of board ${id}`} />` : ''}
  </section>`;
}
