// Request ids (x-amzn-RequestId) in UUID form. SageMaker's are random UUIDs; clients only quote them.
// randomUUID() builds its 36 characters from pieces, about half a kilobyte of garbage per call, which
// under bench/python's load was a twentieth of all the gateway allocated per invocation. So a random
// version-4 UUID is drawn once per process and its last 12 hex digits count up from a random start:
// ids stay unique within a process, and across processes with all but certainty.
import { randomUUID, randomInt } from 'node:crypto';

/** "xxxxxxxx-xxxx-4xxx-yxxx-": the random part, with the version and variant digits of a v4 UUID. */
const PREFIX = randomUUID().slice(0, 24);
const COUNTER_SPAN = 2 ** 48;
let counter = randomInt(2 ** 47);

export function nextRequestId(): string {
  counter = (counter + 1) % COUNTER_SPAN;
  return PREFIX + counter.toString(16).padStart(12, '0');
}
