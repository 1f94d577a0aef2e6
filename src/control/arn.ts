// ARNs as SageMaker writes them: the name part lower-cased (wire-protocol.md §3.1), so that names that
// differ only in case, which SageMaker treats as one resource, also have one ARN.
import type { RecordKind } from '../store/index.js';

export interface RequestContext {
  /** From the SigV4 credential scope of the request, else the configured default. */
  readonly region: string;
  readonly accountId: string;
}

export function arnOf(kind: RecordKind, name: string, ctx: RequestContext): string {
  return `arn:aws:sagemaker:${ctx.region}:${ctx.accountId}:${kind}/${name.toLowerCase()}`;
}

const TAGGABLE = /^arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:([a-z-]+)\/(.+)$/;

/** The kind and name an ARN points at, when it is a kind berth stores. */
export function parseArn(arn: string): { kind: RecordKind; name: string } | { kind: undefined; type: string } {
  const m = TAGGABLE.exec(arn);
  const type = m?.[1] ?? '';
  if (m && (type === 'model' || type === 'endpoint-config' || type === 'endpoint')) return { kind: type, name: m[2] as string };
  return { kind: undefined, type };
}
