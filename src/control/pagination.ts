// Opaque NextToken and the list defaults SageMaker uses (wire-protocol.md §1.9, §3.4, §3.6).
import { invalid } from '../errors/index.js';
import type { ListQuery } from '../store/index.js';

interface ListInputCommon {
  readonly SortBy?: string | undefined;
  readonly SortOrder?: string | undefined;
  readonly NextToken?: string | undefined;
  readonly MaxResults?: number | undefined;
  readonly NameContains?: string | undefined;
  readonly CreationTimeBefore?: number | undefined;
  readonly CreationTimeAfter?: number | undefined;
  readonly LastModifiedTimeBefore?: number | undefined;
  readonly LastModifiedTimeAfter?: number | undefined;
  readonly StatusEquals?: string | undefined;
}

/** ListModels, ListEndpointConfigs and ListEndpoints all return 10 per page unless asked otherwise. */
export const DEFAULT_PAGE_SIZE = 10;

export function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

export function decodeToken(token: string | undefined): number {
  if (token === undefined || token === '') return 0;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown };
    if (typeof parsed.o === 'number' && Number.isInteger(parsed.o) && parsed.o >= 0) return parsed.o;
  } catch {
    // fall through to the error below
  }
  throw invalid(`Invalid NextToken "${token}": pass the NextToken of the previous response unchanged.`);
}

export function listQuery(input: ListInputCommon, defaultLimit = DEFAULT_PAGE_SIZE): ListQuery {
  const sortBy = input.SortBy === 'Name' ? 'name' : input.SortBy === 'Status' ? 'status' : 'createdAt';
  return {
    nameContains: input.NameContains,
    createdAfter: input.CreationTimeAfter,
    createdBefore: input.CreationTimeBefore,
    modifiedAfter: input.LastModifiedTimeAfter,
    modifiedBefore: input.LastModifiedTimeBefore,
    statusEquals: input.StatusEquals,
    sortBy,
    sortOrder: input.SortOrder === 'Ascending' ? 'asc' : 'desc',
    offset: decodeToken(input.NextToken),
    limit: input.MaxResults ?? defaultLimit,
  };
}
