import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors';

const tooLarge = (limit: number): ApiError => new ApiError('request.body_too_large', `Request body too large (at most ${limit} bytes)`);

/**
 * The body's chunks, rejecting once more than `limit` bytes arrived. Not `for await`: leaving that
 * loop early destroys the request, and with it the socket the answer must go out on.
 */
function readAtMost(req: IncomingMessage, limit: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error): void => {
      req.off('data', onData).off('end', onEnd).off('error', done).off('close', onClose);
      if (err) reject(err);
      else resolve(chunks);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) done(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = (): void => done();
    const onClose = (): void => done(new ApiError('request.aborted', 'The client closed the connection before the body was complete'));
    req.on('data', onData).on('end', onEnd).on('error', done).on('close', onClose);
  });
}

export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads a JSON object body of at most `limit` bytes. An empty body is `{}`. Oversized (by
 * Content-Length or by bytes received) is a 413; non-JSON or non-object bodies are a 400. Reading
 * stops as soon as the limit is passed, but the stream is left alone: the HTTP server drains the
 * rest after the answer, so the client reads the 413 instead of a connection reset.
 */
export async function readJsonBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const chunks = await readAtMost(req, limit);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message quotes the input: never echo it.
    throw new ApiError('request.malformed_body', 'Malformed request body: not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ApiError('request.malformed_body', 'Request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}
