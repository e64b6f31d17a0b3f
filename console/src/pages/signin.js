// pages/signin.js — the sign-in page: a password field for an analyst or admin token, checked with
// GET /v1/session; shows why the previous session ended. The token goes to sessionStorage only;
// the field sits outside any <form> and is marked for password managers not to offer saving it.

import { ApiError, errorMessage, getJson } from '../api.js';
import { fill, h } from '../dom.js';
import { readRisk, readStore, startSession } from '../session.js';

export const title = 'Sign in';

/**
 * @param {HTMLElement} root
 * @param {{reason: string | null, onSignedIn: () => void}} opts
 */
export function render(root, opts) {
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    // A token is not a password to keep: no <form> (browsers offer to save what a form submits),
    // autocomplete off, and the opt-outs of the common password managers.
    autocomplete: 'off',
    'data-1p-ignore': '',
    'data-lpignore': 'true',
    'data-bwignore': '',
    'data-form-type': 'other',
    spellcheck: 'false',
    autocapitalize: 'off',
    required: true,
    'data-testid': 'token-input',
    'aria-describedby': 'token-hint',
  });
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'signin-error' });
  const button = h('button', { type: 'button', 'data-testid': 'signin-submit' }, 'Sign in');
  const form = h(
    'div',
    { class: 'signin-form', role: 'form', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to Vedette'),
    opts.reason ? h('p', { class: 'notice', 'data-testid': 'session-ended', role: 'status' }, `Your session ended: ${opts.reason}.`) : null,
    h('label', { for: 'token' }, 'API token'),
    input,
    h(
      'p',
      { id: 'token-hint', class: 'hint' },
      'An analyst or admin token (vdt_…). It is kept in this tab only and forgotten when you sign out, after 8 hours, or after 30 minutes without activity.',
    ),
    error,
    button,
  );
  const submit = async () => {
    if (button.disabled) return;
    const token = input.value.trim();
    error.textContent = '';
    if (!token) {
      error.textContent = 'Enter a token.';
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Checking…';
    try {
      const who = await getJson('/v1/session', { token });
      const role = String(who?.role ?? '');
      if (role !== 'analyst' && role !== 'admin') {
        throw new Error(role ? `a token of role “${role}” cannot use the console: it needs an analyst or admin token` : 'the server did not say the token’s role');
      }
      input.value = '';
      startSession({
        token,
        role,
        tenant: typeof who.tenant === 'string' && who.tenant ? who.tenant : null,
        id: String(who.id ?? ''),
        risk: readRisk(who.risk),
        store: readStore(who.store),
      });
      opts.onSignedIn();
    } catch (err) {
      const message =
        err instanceof ApiError && err.status === 401
          ? 'This token was refused: it is unknown or revoked.'
          : err instanceof ApiError && err.status === 403
            ? `This token may not use the console (${err.message}).`
            : `Sign-in failed: ${errorMessage(err)}`;
      error.textContent = message;
      button.disabled = false;
      button.textContent = 'Sign in';
      input.select();
    }
  };
  button.addEventListener('click', submit);
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.isComposing) return;
    e.preventDefault();
    submit();
  });
  fill(root, h('section', { class: 'page signin' }, form));
  input.focus();
}
