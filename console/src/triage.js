// triage.js — the alert triage actions shared by the alerts list and the alert detail:
// acknowledge, mark false positive (with a required note), reopen; each confirmed by a toast.

import { errorMessage, postJson } from './api.js';
import { askNote, toast } from './dom.js';

/**
 * @param {string} id
 * @param {'ack' | 'false-positive' | 'reopen'} action
 * @param {string} [note]
 */
async function send(id, action, note) {
  return postJson(`/v1/alerts/${encodeURIComponent(id)}/${action}`, note ? { note } : {});
}

/**
 * Acknowledges an alert; true when done.
 * @param {string} id
 */
export async function acknowledge(id) {
  try {
    await send(id, 'ack');
    toast('Alert acknowledged.');
    return true;
  } catch (e) {
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
