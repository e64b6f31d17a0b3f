// triage.js — the alert triage actions shared by the alerts list and the alert detail:
// acknowledge (not while marked false positive), mark false positive (with a required note of at
// most 4096 UTF-8 bytes), reopen; each confirmed by a toast.

import { ApiError, errorMessage, postJson } from './api.js';
import { askNote, toast } from './dom.js';

/** The server's limit on a triage note, in UTF-8 bytes. */
export const NOTE_MAX_BYTES = 4096;

/** Why an alert marked false positive cannot be acknowledged (the server answers 409). */
export const ACK_FP_HINT = 'Reopen it first: a false-positive mark suppresses later alerts';

/**
 * Why an alert of this status cannot be acknowledged, or null when it can.
 * @param {unknown} status
 * @returns {string | null}
 */
export function ackBlocked(status) {
  if (status === 'false_positive') return ACK_FP_HINT;
  if (status === 'acknowledged') return 'Already acknowledged';
  return null;
}

/**
 * @param {string} id
 * @param {'ack' | 'false-positive' | 'reopen'} action
 * @param {string} [note]
 */
async function send(id, action, note) {
  return postJson(`/v1/alerts/${encodeURIComponent(id)}/${action}`, note ? { note } : {});
}

/**
 * Acknowledges an alert; true when the view should reload: done, or refused with 409 (the alert
 * is marked false positive, perhaps by someone else since it was shown).
 * @param {string} id
 * @param {unknown} [status] the status shown; a false-positive one is not sent (see ACK_FP_HINT)
 */
export async function acknowledge(id, status) {
  if (status === 'false_positive') {
    toast(`This alert is marked false positive. ${ACK_FP_HINT}.`, 'info');
    return false;
  }
  try {
    await send(id, 'ack');
    toast('Alert acknowledged.');
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) {
      toast(`Acknowledging refused: ${e.message}`, 'error');
      return true;
    }
    toast(`Acknowledging failed: ${errorMessage(e)}`, 'error');
    return false;
  }
}

/**
 * Asks for a note and marks an alert false positive; true when done.
 * @param {string} id
 */
export async function falsePositive(id) {
  const note = await askNote({
    title: 'Mark as false positive',
    label: 'Why is this a false positive? (required)',
    confirm: 'Mark false positive',
    required: true,
    maxBytes: NOTE_MAX_BYTES,
    hint: 'Later alerts of the same rule and entity will be suppressed until the alert is reopened.',
  });
  if (note === null) return false;
  try {
    await send(id, 'false-positive', note);
    toast('Alert marked as false positive.');
    return true;
  } catch (e) {
    toast(`Marking false positive failed: ${errorMessage(e)}`, 'error');
    return false;
  }
}

/**
 * Reopens an alert (lifting its false-positive mark); true when done.
 * @param {string} id
 */
export async function reopen(id) {
  try {
    await send(id, 'reopen');
    toast('Alert reopened.');
    return true;
  } catch (e) {
    toast(`Reopening failed: ${errorMessage(e)}`, 'error');
    return false;
  }
}
