// The one door to the gateway's public API: JSON in and out, the caller's
// token attached, and every error answer turned into an ApiProblem that
// carries the RFC 9457 problem+json fields the UI shows.

export const API = '/api/v1';

const SESSION = 'feastfast.session';

/** An error answer (problem+json) or a network failure, ready to show. */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem.title || (status ? `HTTP ${status}` : 'No answer');
    this.detail = problem.detail || '';
    this.type = problem.type || 'about:blank';
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.service = problem.service || null;
    this.traceId = problem.trace_id || problem.traceId || null;
  }
}

// The session lives in sessionStorage: each browser tab signs in on its own,
// so one person can play customer, owner and courier side by side.
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION)) || null;
  } catch {
    return null;
  }
}

export function setSession(value) {
  if (value) sessionStorage.setItem(SESSION, JSON.stringify(value));
  else sessionStorage.removeItem(SESSION);
}

export function authHeader() {
  const s = session();
  return s ? { authorization: `Bearer ${s.token}` } : {};
}

/** Calls the API; resolves to the JSON answer, rejects with an ApiProblem. */
export async function call(method, path, { body, headers = {}, signal } = {}) {
  const init = { method, headers: { accept: 'application/json', ...authHeader(), ...headers }, signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path.startsWith('/') && !path.startsWith(API) ? API + path : path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiProblem(0, { title: 'The gateway did not answer', detail: String(e.message || e) });
  }
  const traceId = response.headers.get('x-trace-id');
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const problem = json && typeof json === 'object' ? json : { title: response.statusText, detail: text.slice(0, 200) };
    if (response.status === 401 && session() && !path.startsWith('/auth/')) {
      // The token expired or the users service rotated keys: sign in again.
      setSession(null);
      window.dispatchEvent(new Event('feastfast:signed-out'));
    }
    throw new ApiProblem(response.status, { ...problem, traceId });
  }
  return json;
}

export const get = (path, opts) => call('GET', path, opts);
export const post = (path, body, opts) => call('POST', path, { ...opts, body });
export const put = (path, body, opts) => call('PUT', path, { ...opts, body });
export const patch = (path, body, opts) => call('PATCH', path, { ...opts, body });

/** Signs in and keeps the session (token and who it is). */
export async function signIn(email, password) {
  const token = await post('/auth/login', { email, password });
  setSession({ token: token.access_token });
  try {
    const me = await get('/me');
    setSession({ token: token.access_token, user: me });
    return me;
  } catch (e) {
    setSession(null);
    throw e;
  }
}

/** A fresh idempotency key for one attempt at placing one order. */
export function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}
