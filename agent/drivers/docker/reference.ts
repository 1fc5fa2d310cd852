/**
 * What a docker `url` and `file` may be (docs/protocol.md "docker: what url and file mean"): a
 * registry address `host[:port][/prefix]` with an image reference `name[:tag]` or `name@digest`
 * (the grammar of github.com/distribution/reference, lowercase path components), or an http(s)
 * base URL with a `docker save` tarball name. Also the container name of a component. Pure.
 */
import { nodeCrypto } from '../../../common/node-crypto.js';

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const DIGEST = '[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}';
const IMAGE_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG}|@${DIGEST})?$`);
const PREFIX_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const HOST_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
const HOST_RE = new RegExp(`^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[0-9A-Fa-f:.]+\\])(?::(\\d{1,5}))?$`);
const TARBALL_RE = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]*\.(?:tar|tar\.gz|tgz)$/;

/** Whether `url` is the http(s) tarball form (else it is a registry address). */
export const isTarballSource = (url: string): boolean => /^https?:\/\//i.test(url);

/** The image a registry `url` and `file` name: `url/file` without a trailing slash on url. */
export const registryImage = (url: string, file: string): string => `${url.replace(/\/+$/, '')}/${file}`;

/**
 * The container name of component `uuid`: `muster-<uuid>` when the uuid is a valid docker name
 * part, else the uuid with other characters replaced by `_` plus a short hash of it (so that two
 * uuids never share a name).
 */
export function containerName(uuid: string): string {
  const safe = uuid.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100);
  if (safe === uuid) return `muster-${uuid}`;
  return `muster-${safe}-${nodeCrypto().createHash('sha256').update(uuid).digest('hex').slice(0, 8)}`;
}

/**
 * Checks a docker `url` and `file`.
 * @returns what is wrong, naming the field, or null when both are usable
 */
export function validateDockerSource(url: string, file: string): string | null {
  if (isTarballSource(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return `url ${JSON.stringify(url)}: not a valid http(s) URL`;
    }
    if (!u.hostname) return `url ${JSON.stringify(url)}: the http(s) base URL has no host`;
    if (u.search || u.hash) return `url ${JSON.stringify(url)}: the base URL must not have a query or fragment`;
    if (!TARBALL_RE.test(file)) {
      return `file ${JSON.stringify(file)}: with an http(s) url, file must be an image tarball name (*.tar, *.tar.gz or *.tgz, made by docker save)`;
    }
    return null;
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url)) {
    return `url ${JSON.stringify(url)}: scheme must be http:// or https://, or give a registry address host[:port][/prefix] without scheme`;
  }
  const reg = url.replace(/\/+$/, '');
  const slash = reg.indexOf('/');
  const host = slash < 0 ? reg : reg.slice(0, slash);
  const prefix = slash < 0 ? '' : reg.slice(slash + 1);
  const m = HOST_RE.exec(host);
  const port = m?.[1] === undefined ? 1 : Number(m[1]);
  if (!m || port < 1 || port > 65535) {
    return `url ${JSON.stringify(url)}: must be a registry address host[:port][/prefix] or an http(s):// base URL`;
  }
  if (prefix && !PREFIX_RE.test(prefix)) {
    return `url ${JSON.stringify(url)}: registry path prefix ${JSON.stringify(prefix)} must be lowercase letters, digits and . _ - separated by /`;
  }
  if (!IMAGE_RE.test(file)) {
    return `file ${JSON.stringify(file)}: with a registry url, file must be an image reference name[:tag] or name@digest (lowercase name, tag or digest, not both)`;
  }
  if (`${reg}/${file}`.replace(/[:@].*$/, '').length > 255) {
    return `file ${JSON.stringify(file)}: the image name ${reg}/${file} is longer than 255 characters`;
  }
  return null;
}
