// The error registry: every code a client can see, its status, and the messages SageMaker users know.
export { ERRORS, BerthError, isBerthError } from './registry.js';
export type { ErrorCode, ErrorSpec, ErrorMembers } from './registry.js';
export { notFound, alreadyExists, endpointInProgress, invalid, constraintViolations } from './messages.js';
export type { ResourceKind, ConstraintViolation } from './messages.js';
