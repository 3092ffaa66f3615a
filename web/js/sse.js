// Server-sent events over fetch: `EventSource` cannot send the
// Authorization header, and the token must not travel in the URL. This
// reads the stream with a ReadableStream, parses the SSE framing, and
// reconnects with back-off (0.5 s doubling to 8 s) after a drop; every
// (re)connection starts with the full current state, so nothing missed
// while disconnected stays missing.

import { ApiProblem, authHeader } from './api.js';

/**
 * Follows `url`. Callbacks: `onEvent(name, data)`, `onState(state)` with
 * state `connecting` | `live` | `reconnecting` | `ended`, `onProblem(p)`
 * for an answer that will not change by retrying (404, 401, 403).
 * Returns `{close()}`.
 */
export function follow(url, { onEvent, onState = () => {}, onProblem = () => {} }) {
  const controller = new AbortController();
  let closed = false;
  let delay = 500;

  async function connect() {
    onState('connecting');
    const response = await fetch(url, {
      headers: { accept: 'text/event-stream', ...authHeader() },
      signal: controller.signal,
      cache: 'no-store',
    });
    if (!response.ok) {
      let problem = {};
      try {
        problem = await response.json();
      } catch {
        problem = { title: response.statusText };
      }
      const error = new ApiProblem(response.status, problem);
      if ([401, 403, 404].includes(response.status)) {
        closed = true;
        onProblem(error);
        return 'final';
      }
      throw error;
    }
    onState('live');
    delay = 500;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let finished = false;
    while (!finished) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parse(block);
        if (event && event.data !== '') {
          let data = event.data;
          try {
            data = JSON.parse(data);
          } catch {
            // Not JSON: hand over the text.
          }
          if (onEvent(event.name, data) === 'final') finished = true;
        }
      }
    }
    if (finished) {
      // The last word is in: let go of the connection rather than leave it
      // open until the server closes it.
      await reader.cancel().catch(() => {});
      return 'final';
    }
    return 'dropped';
  }

  (async () => {
    while (!closed) {
      let outcome;
      try {
        outcome = await connect();
      } catch (e) {
        if (closed || e.name === 'AbortError') break;
        outcome = 'dropped';
      }
      if (outcome === 'final' || closed) break;
      onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 8000);
    }
    onState('ended');
  })();

  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
}

/** One SSE block → `{name, data}`; comments (keep-alives) → null. */
export function parse(block) {
  let name = 'message';
  const data = [];
  let any = false;
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const key = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (key === 'event') name = value;
    else if (key === 'data') data.push(value);
    else continue;
    any = true;
  }
  return any ? { name, data: data.join('\n') } : null;
}
