// When to try a request again: the API client's backoff (honouring Retry-After), and the H5 app's
// answer retry, which sends an answer again with the same choice until the attempt's deadline (the
// server answers a repeated choice with the same result) and, after a reload, resumes the answer
// that was in flight. No imports and no DOM: Node's test runner loads it as is.

/**
 * Milliseconds before retry number `attempt` (0-based): the server's Retry-After when it sent one
 * (seconds or an HTTP date, at most 30 s), else exponential backoff with jitter (half to all of
 * 400 ms * 2^attempt, at most 8 s) so that phones cut off together do not come back together.
 */
export function retryDelay(attempt, retryAfter = null, now = Date.now(), random = Math.random) {
  if (retryAfter) {
    const secs = Number(retryAfter);
    if (!Number.isNaN(secs)) return Math.min(Math.max(secs, 0) * 1000, 30000);
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return Math.min(Math.max(at - now, 0), 30000);
  }
  const base = Math.min(400 * 2 ** attempt, 8000);
  return base / 2 + random() * base / 2;
}

/** A failure worth another try: no response at all (status 0), a 5xx, or 429. */
export function isTransient(err) {
  return Boolean(err) && (err.isNetwork === true || err.status === 0 || err.status === 429 || err.status >= 500);
}

/** The answer retry's pause after failure `i` (0-based): 1, 2, 4, then 8 s. */
export function answerBackoffMs(i) { return Math.min(1000 * 2 ** Math.min(i, 3), 8000); }

/** The finish retry's pause after failure `i` (0-based): 1.5, 3, 4.5 ... at most 8 s. */
export function finishBackoffMs(i) { return Math.min(1500 * (i + 1), 8000); }

/**
 * Calls send() until it resolves. A transient failure is retried after pause(answerBackoffMs(i))
 * unless giveUp() (the attempt's deadline has passed); any other failure is thrown at once.
 * onRetry(true) before each pause, onRetry(false) when a retry got through.
 */
export async function sendWithRetry(send, { pause, giveUp = () => false, onRetry = () => {} }) {
  for (let i = 0; ; i++) {
    try {
      const result = await send();
      if (i) onRetry(false);
      return result;
    } catch (err) {
      if (!isTransient(err) || giveUp()) throw err;
      onRetry(true);
      await pause(answerBackoffMs(i));
    }
  }
}

/**
 * The position in `questions` of the answer that was in flight when the page closed (`pending`,
 * {index, choice}, kept in localStorage), to send it again; -1 when there is none, it was answered
 * meanwhile (`answered`: a Map or Set of indexes) or its question is not in the attempt.
 */
export function pendingPosition(pending, answered, questions) {
  if (!pending || answered.has(pending.index)) return -1;
  return questions.findIndex((q) => q.index === pending.index);
}
