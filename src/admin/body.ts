import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors';

export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads a JSON object body of at most `limit` bytes. An empty body is `{}`. Oversized (by
 * Content-Length or by bytes received), non-JSON or non-object bodies are a 400; reading stops as
 * soon as the limit is passed.
 */
export async function readJsonBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const tooLarge = () => new ApiError(400, 'request.body_too_large', `Request body too large (at most ${limit} bytes)`, { connection: 'close' });
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message quotes the input: never echo it.
    throw new ApiError(400, 'request.malformed_body', 'Malformed request body: not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ApiError(400, 'request.malformed_body', 'Request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}
