// hyperhive: the sign-in page. `hyperhive up` prints a link with the token after '#':
// the fragment never reaches a server or a log; it fills the form, leaves the address
// bar, and signs in.
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  const hash = location.hash;
  if (!hash.startsWith('#token=')) return;
  const token = decodeURIComponent(hash.slice('#token='.length));
  history.replaceState(null, '', location.pathname + location.search);
  const input = document.getElementById('token');
  if (!input || !token) return;
  input.value = token;
  document.getElementById('login-form').requestSubmit();
});
