// What berth reads from SigV4: the region of the credential scope, which clients set from their own
// configuration and which SageMaker stamps into ARNs (wire-protocol.md §1.7). berth does not verify
// signatures: it is a single-tenant server, and any credentials the SDKs accept are fine.
import type { IncomingHttpHeaders } from 'node:http';

/** The headers regionFromAuthorization reads. */
export const SIGV4_HEADERS: readonly string[] = ['authorization'];

const SCOPE = /Credential=[^/,\s]+\/\d{8}\/([a-z0-9-]+)\/[a-z0-9-]+\/aws4_request/;

export function regionFromAuthorization(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers['authorization'];
  if (typeof auth !== 'string') return undefined;
  return SCOPE.exec(auth)?.[1];
}
